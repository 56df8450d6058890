/**
 * prefetchingRead (catalog/stored-source.ts): an object read as consecutive ranges with several
 * GETs in flight, yielded in order, never more than `ahead` at once, the range being read yielded as
 * its bytes arrive, and a failed, short or long range failing the read naming the object.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReadRange, Repository } from '../../../src/catalog/repository.js';
import { prefetchingRead, startRangedRead } from '../../../src/catalog/stored-source.js';

/** Just what prefetchingRead uses of a Repository: ranged reads, slow and out of order. */
function rangedStore(data: Buffer, opts: { failAt?: number; shortAt?: number; longAt?: number } = {}) {
  const stats = { inFlight: 0, maxInFlight: 0, requests: 0 };
  const repo = {
    where: (key: string) => `s3://bucket/${key}`,
    async read(_key: string, range: ReadRange = {}): Promise<Readable | undefined> {
      const offset = range.offset ?? 0;
      stats.requests++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      // Later ranges answer sooner: order must come from the reader, not from the store.
      await sleep(20 - Math.min(19, offset / 1000));
      stats.inFlight--;
      if (offset === opts.failAt) throw new Error('connection reset');
      const end = offset === opts.shortAt ? offset + 1 : offset + (range.length ?? data.length);
      if (offset === opts.longAt) return Readable.from([data.subarray(offset, end), Buffer.from('x')]);
      return Readable.from([data.subarray(offset, end)]);
    },
  } as unknown as Repository;
  return { repo, stats };
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

test('the bytes come back whole and in order, with at most `ahead` ranges in flight', async () => {
  const data = randomBytes(10_000 + 17);
  const { repo, stats } = rangedStore(data);
  const got = await collect(prefetchingRead(repo, 'k', data.length, { chunkBytes: 1000, ahead: 3 }));
  assert.ok(got.equals(data));
  assert.is(stats.requests, 11);
  assert.is(stats.maxInFlight, 3);
});

test('an empty object is no request at all', async () => {
  const { repo, stats } = rangedStore(Buffer.alloc(0));
  assert.is((await collect(prefetchingRead(repo, 'k', 0))).length, 0);
  assert.is(stats.requests, 0);
});

test('a failed range fails the read; a short one fails it naming the object and the range', async () => {
  const data = randomBytes(5000);
  await collect(prefetchingRead(rangedStore(data, { failAt: 2000 }).repo, 'k', data.length, { chunkBytes: 1000, ahead: 2 })).then(
    () => assert.unreachable('read succeeded'),
    (err: Error) => assert.match(err.message, /connection reset/),
  );
  await collect(prefetchingRead(rangedStore(data, { shortAt: 3000 }).repo, 'k', data.length, { chunkBytes: 1000, ahead: 2 })).then(
    () => assert.unreachable('read succeeded'),
    (err: Error) => assert.match(err.message, /s3:\/\/bucket\/k: bytes 3000-3999 came back as 1 bytes/),
  );
});

test('a range longer than asked fails the read', async () => {
  const data = randomBytes(5000);
  await collect(prefetchingRead(rangedStore(data, { longAt: 1000 }).repo, 'k', data.length, { chunkBytes: 1000, ahead: 2 })).then(
    () => assert.unreachable('read succeeded'),
    (err: Error) => assert.match(err.message, /bytes 1000-1999 came back as more than 1000 bytes/),
  );
});

test('the first range is yielded as it arrives, before it is complete (the decompressor starts at once)', async () => {
  const data = randomBytes(4000);
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const repo = {
    where: (key: string) => `s3://bucket/${key}`,
    async read(_key: string, range: ReadRange = {}): Promise<Readable> {
      const offset = range.offset ?? 0;
      const end = offset + (range.length ?? data.length);
      // The first 100 bytes now, the rest of the range only once the reader has had them.
      return Readable.from(
        (async function* () {
          yield data.subarray(offset, offset + 100);
          await gate;
          yield data.subarray(offset + 100, end);
        })(),
      );
    },
  } as unknown as Repository;
  const reader = prefetchingRead(repo, 'k', data.length, { chunkBytes: 2000, ahead: 2 });
  const first = await Promise.race([reader.next(), sleep(2000).then(() => 'waited for the whole range' as const)]);
  open();
  assert.type(first, 'object', String(first));
  const head = (first as IteratorResult<Buffer>).value as Buffer;
  assert.ok(head.equals(data.subarray(0, 100)));
  const rest = await collect({ [Symbol.asyncIterator]: () => reader });
  assert.ok(Buffer.concat([head, rest]).equals(data));
});

test('startRangedRead sends its GETs at once, before the bytes are asked for; cancel() fails the read and lets go', async () => {
  const data = randomBytes(10_000);
  const { repo, stats } = rangedStore(data);
  const read = startRangedRead(repo, 'k', data.length, { chunkBytes: 1000, ahead: 3 });
  assert.is(stats.requests, 3);
  await sleep(50); // the three ranges are in memory now; nothing more is fetched until they are read
  assert.is(stats.requests, 3);
  read.cancel();
  await collect(read.bytes).then(
    () => assert.unreachable('a cancelled read succeeded'),
    (err: Error) => assert.match(err.message, /the read of s3:\/\/bucket\/k was cancelled/),
  );
  assert.is(stats.requests, 3);
});

test('startRangedRead read to its end gives the object', async () => {
  const data = randomBytes(7_777);
  const read = startRangedRead(rangedStore(data).repo, 'k', data.length, { chunkBytes: 1000, ahead: 2 });
  await sleep(30);
  assert.ok((await collect(read.bytes)).equals(data));
  read.cancel(); // after the end: nothing to let go of
});

test('by default at most 12 MiB of the object is read ahead of its consumer', async () => {
  const data = Buffer.alloc(40 << 20);
  let asked = 0;
  const repo = {
    where: (key: string) => `s3://bucket/${key}`,
    async read(_key: string, range: ReadRange = {}): Promise<Readable> {
      const offset = range.offset ?? 0;
      const length = range.length ?? data.length;
      asked += length;
      return Readable.from([data.subarray(offset, offset + length)]);
    },
  } as unknown as Repository;
  const read = startRangedRead(repo, 'k', data.length);
  await sleep(50); // nobody reads yet: only the ranges asked for at the start are in memory
  read.cancel();
  assert.ok(asked <= 12 << 20, `${asked >> 20} MiB asked for before the consumer came`);
});

test('a response piece is copied as it arrives, not kept: a store that refills one buffer for every piece reads back whole', async () => {
  // Kept as they came, the pieces of the ranges read ahead outlived several young-generation
  // collections and were held until a full one (40-60 MB in an S3 restore of pgbench -s 50).
  // A store that hands out the same memory again proves none is kept.
  const data = randomBytes((3 << 20) + 12_345);
  const repo = {
    where: (key: string) => `s3://bucket/${key}`,
    async read(_key: string, range: ReadRange = {}): Promise<AsyncIterable<Buffer> & { destroy(): void }> {
      const offset = range.offset ?? 0;
      const end = offset + (range.length ?? data.length);
      const shared = Buffer.alloc(16 << 10);
      const pieces = (async function* () {
        for (let at = offset; at < end; at += shared.length) {
          const n = data.copy(shared, 0, at, Math.min(end, at + shared.length));
          yield shared.subarray(0, n);
        }
      })();
      return Object.assign(pieces, { destroy: () => void pieces.return(undefined) });
    },
  } as unknown as Repository;
  const read = startRangedRead(repo, 'k', data.length, { chunkBytes: 1 << 20, ahead: 3 });
  await sleep(30); // the ranges ahead arrive before the consumer comes
  assert.ok((await collect(read.bytes)).equals(data));
});

test.run();
