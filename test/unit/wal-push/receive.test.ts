/**
 * wal-receive's frame protocol, driven through its stdin as the worker drives it (the real CLI,
 * no SSH): a zstd-encoded frame is decompressed and checked like any file, then stored as sent;
 * a frame damaged in transit, an unknown encoding or another cluster's WAL is refused.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compressBuffer } from '../../../src/catalog/compress.js';
import { readArchivedWal } from '../../../src/catalog/wal-archive.js';
import type { ReceiveReply } from '../../../src/wal-push/receive.js';
import { CLI } from '../../support/pgbk.js';

const SEG = 1024 * 1024;
const SYSID = '7300000000000000001';

/** A minimal valid segment NAME (timeline 1, 1 MiB segments) of cluster `sysid`. */
function segment(segno: number, sysid = SYSID, fill = 0): Buffer {
  const b = Buffer.alloc(SEG, fill);
  b.fill(0, 0, 64);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(0x0002, 2);
  b.writeUInt32LE(1, 4);
  b.writeBigUInt64LE(BigInt(segno) * BigInt(SEG), 8);
  b.writeBigUInt64LE(BigInt(sysid), 24);
  b.writeUInt32LE(SEG, 32);
  b.writeUInt32LE(8192, 36);
  return b;
}

const name = (segno: number): string => `0000000100000000${segno.toString(16).toUpperCase().padStart(8, '0')}`;

interface Frame {
  readonly name: string;
  readonly payload: Buffer;
  readonly encoding?: string;
}

async function receive(catalog: string, frames: readonly Frame[]): Promise<ReceiveReply[]> {
  const child = spawn(process.execPath, [CLI, 'wal-receive', '--catalog', catalog, '--compression', 'zstd', 'main'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  for (const f of frames) {
    child.stdin.write(`${JSON.stringify({ name: f.name, size: f.payload.length, ...(f.encoding === undefined ? {} : { encoding: f.encoding }) })}\n`);
    child.stdin.write(f.payload);
  }
  child.stdin.end();
  const code = await new Promise<number | null>((r) => child.once('close', r));
  assert.is(code, 0, err);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ReceiveReply);
}

test('zstd frames are checked on their decompressed bytes and stored as sent', async () => {
  const catalog = await mkdtemp(path.join(os.tmpdir(), 'pgbk-recv-'));
  const first = segment(1);
  const frame = await compressBuffer(first, 'zstd');
  const damaged = Buffer.from(await compressBuffer(segment(2, SYSID, 7), 'zstd'));
  damaged[Math.floor(damaged.length / 2)]! ^= 0xff;
  const replies = await receive(catalog, [
    { name: name(1), payload: frame, encoding: 'zstd' },
    // The same file again, raw: a duplicate, acknowledged.
    { name: name(1), payload: first },
    { name: name(2), payload: damaged, encoding: 'zstd' },
    { name: name(3), payload: await compressBuffer(segment(3), 'zstd'), encoding: 'brotli' },
    { name: name(4), payload: await compressBuffer(segment(4, '7300000000000000999'), 'zstd'), encoding: 'zstd' },
    // Same name, other content: refused, never overwritten.
    { name: name(1), payload: await compressBuffer(segment(1, SYSID, 3), 'zstd'), encoding: 'zstd' },
  ]);
  assert.equal(replies[0], { name: name(1), ok: true, result: 'archived' });
  assert.equal(replies[1], { name: name(1), ok: true, result: 'duplicate' });
  assert.is(replies[2]!.ok, false);
  assert.match(replies[2]!.error ?? '', /arrived damaged/);
  assert.is(replies[3]!.ok, false);
  assert.match(replies[3]!.error ?? '', /unknown transfer encoding "brotli"/);
  assert.is(replies[4]!.ok, false);
  assert.match(replies[4]!.error ?? '', /refusing .*WAL belongs to cluster 7300000000000000999/);
  assert.is(replies[5]!.ok, false);
  assert.match(replies[5]!.error ?? '', /different content/);
  const dir = path.join(catalog, 'main', 'wal', '0000000100000000');
  assert.equal((await readdir(dir)).filter((f) => !f.startsWith('.')).sort(), [`${name(1)}.zst`, 'SHA256SUMS']);
  assert.ok((await readFile(path.join(dir, `${name(1)}.zst`))).equals(frame), 'the frame is stored as sent');
  assert.ok((await readArchivedWal(catalog, 'main', name(1))).equals(first));
  await rm(catalog, { recursive: true, force: true });
});

test('frames one after another decode into one reused buffer: each stored file is its own, also after a damaged frame between them', async () => {
  const catalog = await mkdtemp(path.join(os.tmpdir(), 'pgbk-recv-'));
  const segs = [5, 6, 7, 8].map((n) => segment(n, SYSID, 0x40 + n));
  const damaged = Buffer.from(await compressBuffer(segment(9, SYSID, 0x33), 'zstd'));
  damaged[damaged.length - 3]! ^= 0xff; // the content checksum: decoded (over the buffer) before it fails
  const frames: Frame[] = [];
  for (const [i, seg] of segs.entries()) {
    frames.push({ name: name(5 + i), payload: await compressBuffer(seg, 'zstd'), encoding: 'zstd' });
    if (i === 1) frames.push({ name: name(9), payload: damaged, encoding: 'zstd' });
  }
  const replies = await receive(catalog, frames);
  assert.equal(
    replies.map((r) => [r.name, r.ok]),
    [
      [name(5), true],
      [name(6), true],
      [name(9), false],
      [name(7), true],
      [name(8), true],
    ],
  );
  for (const [i, seg] of segs.entries()) assert.ok((await readArchivedWal(catalog, 'main', name(5 + i))).equals(seg), `${name(5 + i)} holds its own bytes`);
  await rm(catalog, { recursive: true, force: true });
});

test.run();
