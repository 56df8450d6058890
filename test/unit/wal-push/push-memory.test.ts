/**
 * The local push's memory stays bounded over a backlog (issue 13 item 3: the worker reached 369 MB):
 * the pusher reads segments into at most one buffer per file in flight, reused, and with the
 * compression threads those buffers are shared memory the threads compress in place (no per-thread
 * copy of the segment, no output buffers per thread); each frame comes back in a buffer of its own.
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
    while (readdirSync(markers).filter((m) => !m.startsWith('.')).length < names.length) {
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

test('a compression thread answers with the frame in memory of its own (not shared, nothing kept per thread) and its sha256', async () => {
  const pool = new CompressPool(1);
  try {
    const input = sharedBuffer(real.bytes.length);
    real.bytes.copy(input);
    const a = await pool.compress(input);
    const b = await pool.compress(input);
    for (const part of [...a.parts, ...b.parts]) {
      assert.ok(!(part.buffer instanceof SharedArrayBuffer), 'no piece in shared memory');
      assert.ok(part.buffer.byteLength - part.length <= 64, 'each piece in a buffer of about its own size');
    }
    const bufsA = new Set(a.parts.map((p) => p.buffer));
    assert.ok(
      b.parts.every((p) => !bufsA.has(p.buffer)),
      'each frame its own memory',
    );
    const frameA = Buffer.concat(a.parts);
    assert.equal(frameA, Buffer.concat(b.parts));
    assert.is(a.sha256, sha256Hex(frameA), 'the sha256 is of the stored bytes');
    assert.equal(await decompressBuffer(frameA, 'zstd'), real.bytes, 'the pieces make the frame of the segment');
  } finally {
    await pool.close();
  }
});

test.run();
