/**
 * The local push's memory stays bounded over a backlog (issue 13 item 3: the worker reached 369 MB):
 * the pusher reads segments into at most one buffer per file in flight, reused, and with the
 * compression threads those buffers are shared memory the threads compress in place (no per-thread
 * copy of the segment); each frame comes back in output memory the pool lends and reuses.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recordIdentity } from '../../../src/catalog/identity.js';
import { readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { decompressBuffer } from '../../../src/catalog/compress.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import type { ServerConfig } from '../../../src/config/resolved.js';
import { segmentNameFrom, segmentNumber } from '../../../src/pg/wal-name.js';
import { CompressPool, sharedBuffer } from '../../../src/wal-push/compress-pool.js';
import { openLocalSink } from '../../../src/wal-push/local-sink.js';
import { Pusher, type PushSink } from '../../../src/wal-push/pusher.js';
import { makeTempDir } from '../catalog/tmp-catalog.js';
import { makeRealSegment, type RealSegment } from '../pg/real-segment.js';

const tmp = makeTempDir('pgbk-push-memory-');
let real: RealSegment;
test.before(() => {
  real = makeRealSegment();
});
test.after(() => {
  real.cleanup();
  tmp.cleanup();
});

const server: ServerConfig = {
  name: 'main',
  backup: { method: 'basebackup', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 600 },
  wal: { method: 'push', compression: 'zstd' },
  retention: { redundancy: 2, minRedundancy: 1 },
};

function segmentAs(name: string): Buffer {
  const b = Buffer.from(real.bytes);
  b.writeUInt32LE(Number.parseInt(name.slice(0, 8), 16), 4);
  b.writeBigUInt64LE(BigInt(segmentNumber(name, real.segSize)) * BigInt(real.segSize), 8);
  return b;
}

test('a 12-segment backlog: read buffers at most one per file in flight, shared, reused; every segment archived as it was', async () => {
  const catalog = path.join(tmp.dir, 'catalog');
  const pgdata = path.join(tmp.dir, 'pgdata');
  const markers = path.join(tmp.dir, 'markers');
  mkdirSync(path.join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
  mkdirSync(markers);
  mkdirSync(catalog);
  const opened = await openLocalSink(catalog, server);
  try {
    await recordIdentity(catalog, 'main', {
      systemIdentifier: real.systemIdentifier,
      pgVersion: 150000,
      walSegmentSize: real.segSize,
      firstContact: '2026-12-01T00:00:00.000Z',
    });
    const names = Array.from({ length: 12 }, (_, i) => segmentNameFrom(1, 0x10 + i, real.segSize));
    for (const n of names) {
      writeFileSync(path.join(pgdata, 'pg_wal', n), segmentAs(n));
      writeFileSync(path.join(pgdata, 'pg_wal', 'archive_status', `${n}.ready`), '');
    }
    const inner = opened.sink;
    const allocated: Buffer[] = [];
    const sent = new Set<ArrayBufferLike>();
    let sharedSends = 0;
    const counting: PushSink = {
      maxInFlight: inner.maxInFlight,
      get dead() {
        return inner.dead;
      },
      send: (name, file, data) => {
        sent.add(data.buffer);
        if (data.buffer instanceof SharedArrayBuffer) sharedSends++;
        return inner.send(name, file, data);
      },
      readBuffer: (size) => {
        const b = inner.readBuffer!(size);
        allocated.push(b);
        return b;
      },
    };
    const pusher = new Pusher(counting, pgdata, markers, () => undefined);
    await pusher.scan();
    const t0 = Date.now();
    while (readdirSync(markers).filter((m) => !m.startsWith('.') && !m.endsWith('.hi')).length < names.length) {
      if (Date.now() - t0 > 60_000) throw new Error('backlog not archived within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(
      allocated.length >= 1 && allocated.length <= inner.maxInFlight,
      `${allocated.length} read buffers for ${names.length} segments (max ${inner.maxInFlight})`,
    );
    assert.ok(sent.size <= inner.maxInFlight, `${sent.size} distinct buffers sent`);
    assert.is(sharedSends, names.length, 'every segment handed over in shared memory');
    for (const n of names) assert.equal(await readArchivedWal(catalog, 'main', n), segmentAs(n), n);
  } finally {
    await opened.close();
  }
});

test('a compression thread writes the frame into output memory the pool lends: distinct while held, reused once released', async () => {
  const pool = new CompressPool(1);
  try {
    const input = sharedBuffer(real.bytes.length);
    real.bytes.copy(input);
    const a = await pool.compress(input);
    const b = await pool.compress(input);
    const [pa, pb] = [a.frame.parts, b.frame.parts];
    assert.is(pa.length, 1, 'the frame in one piece');
    assert.ok(pa[0]!.buffer instanceof SharedArrayBuffer, 'in shared memory (written by the thread)');
    assert.ok(pa[0]!.buffer !== pb[0]!.buffer, 'a frame still held is never the memory of the next one');
    const frameA = Buffer.from(pa[0]!);
    assert.equal(frameA, Buffer.from(pb[0]!));
    assert.is(a.frame.sha256, sha256Hex(frameA), 'the sha256 is of the stored bytes');
    assert.equal(await decompressBuffer(frameA, 'zstd'), real.bytes, 'the frame of the segment');
    const held = pb[0]!.buffer;
    a.release();
    a.release(); // twice: still one spare
    b.release();
    const c = await pool.compress(input);
    const d = await pool.compress(input);
    const reused = new Set([c.frame.parts[0]!.buffer, d.frame.parts[0]!.buffer]);
    assert.ok(reused.has(pa[0]!.buffer) && reused.has(held), 'released output memory serves the next frames (no fresh memory per segment)');
    assert.is(reused.size, 2);
    assert.equal(Buffer.from(c.frame.parts[0]!), frameA, 'and holds their own frame');
    c.release();
    d.release();
  } finally {
    await pool.close();
  }
});

test.run();
