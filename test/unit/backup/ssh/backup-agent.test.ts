import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AGENT_PROTOCOL_VERSION, FrameDecoder, type AgentRequest, type Frame } from '../../../../src/backup/ssh/agent-frames.js';
import { zstdCodec } from '../../../../src/catalog/zstd.js';
import { CLI } from '../../../support/pgbk.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function runAgent(req: AgentRequest | string): { frames: Frame[]; code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'backup-agent'], { input: typeof req === 'string' ? req : JSON.stringify(req), maxBuffer: 1 << 26 });
  const d = new FrameDecoder();
  const frames = d.push(r.stdout);
  return { frames, code: r.status, stderr: r.stderr.toString() };
}

test('pgbk backup-agent sends only chunks whose sha256 differs from the previous ones; missing files reported', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-agent-'));
  try {
    const chunk = 4096;
    const a = Buffer.concat([Buffer.alloc(chunk, 1), Buffer.alloc(chunk, 2), Buffer.alloc(100, 3)]);
    writeFileSync(path.join(dir, 'a'), a);
    writeFileSync(path.join(dir, 'empty'), '');
    const prevA = [sha(Buffer.alloc(chunk, 1)), sha(Buffer.alloc(chunk, 9)), sha(Buffer.alloc(100, 3))];
    const { frames, code, stderr } = runAgent({
      version: AGENT_PROTOCOL_VERSION,
      chunkSize: chunk,
      files: [{ path: path.join(dir, 'a'), hashes: prevA }, { path: path.join(dir, 'gone') }, { path: path.join(dir, 'empty') }],
    });
    assert.is(code, 0, stderr);
    assert.equal(
      frames.map((f) => f.type),
      ['hello', 'same', 'chunk', 'same', 'end', 'end', 'chunk', 'end', 'done'],
    );
    const changed = frames[2] as Extract<Frame, { type: 'chunk' }>;
    assert.ok(changed.data.equals(Buffer.alloc(chunk, 2)));
    assert.is(changed.hash.toString('hex'), sha(Buffer.alloc(chunk, 2)));
    assert.equal(frames[4], { type: 'end', size: a.length, missing: false });
    assert.equal(frames[5], { type: 'end', size: 0, missing: true });
    assert.is((frames[6] as Extract<Frame, { type: 'chunk' }>).data.length, 0);
    assert.equal(frames[8], { type: 'done', files: 3, bytesRead: a.length, lsnSkipped: 0, walSkipped: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad request ends in an error frame and exit 1, after the hello', () => {
  const r = runAgent('{"version":99}');
  assert.is(r.code, 1);
  assert.equal(
    r.frames.map((f) => f.type),
    ['hello', 'error'],
  );
  assert.match((r.frames[1] as Extract<Frame, { type: 'error' }>).message, /request version 99/);
});

test('with a zstd level: changed chunks arrive as zstd frames of the bytes they hash; equal ones as same', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-agent-'));
  try {
    const chunk = 65536;
    const parts = [Buffer.alloc(chunk, 'a'), Buffer.from(Array.from({ length: chunk }, (_, i) => (i * 7919) % 251)), Buffer.alloc(10, 'z')];
    writeFileSync(path.join(dir, 'f'), Buffer.concat(parts));
    const { frames, code, stderr } = runAgent({
      version: AGENT_PROTOCOL_VERSION,
      chunkSize: chunk,
      zstdLevel: 1,
      workers: 3,
      files: [{ path: path.join(dir, 'f'), hashes: [sha(parts[0]!), sha(Buffer.alloc(chunk)), sha(Buffer.alloc(10))], previousSize: 2 * chunk + 10 }],
    });
    assert.is(code, 0, stderr);
    assert.equal(
      frames.map((f) => f.type),
      ['hello', 'same', 'compressed', 'compressed', 'end', 'done'],
    );
    const codec = await zstdCodec();
    for (const [i, f] of [
      [1, frames[2]],
      [2, frames[3]],
    ] as const) {
      const c = f as Extract<Frame, { type: 'compressed' }>;
      assert.ok(codec.decompress(c.frame).equals(parts[i]!), `chunk ${i}`);
      assert.is(c.length, parts[i]!.length);
      assert.is(c.hash.toString('hex'), sha(parts[i]!));
    }
    assert.ok((frames[2] as Extract<Frame, { type: 'compressed' }>).frame.length < chunk, 'compressed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A relation-like file: `pages` pages of 8 KiB, each stamped with LSN 0/lsn[i] and filled with `fill`. */
function pagesFile(lsns: readonly number[], fill: number): Buffer {
  return Buffer.concat(
    lsns.map((lo) => {
      const p = Buffer.alloc(8192, fill);
      p.writeUInt32LE(0, 0);
      p.writeUInt32LE(lo, 4);
      return p;
    }),
  );
}

test('page LSNs: a chunk whose pages all predate the previous start is sent as same unhashed; a newer or zero page is hashed', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-agent-'));
  try {
    const chunk = 2 * 8192;
    // Chunk 0: both pages old (0/100, 0/200) but bytes differ from the previous hash: trusted, same.
    // Chunk 1: one page at 0/5000 (after the start 0/1000): hashed, sent. Chunk 2: a zero LSN: hashed.
    const bytes = pagesFile([0x100, 0x200, 0x300, 0x5000, 0, 0x10], 1);
    writeFileSync(path.join(dir, 'rel'), bytes);
    writeFileSync(path.join(dir, 'other'), bytes);
    const prev = [sha(Buffer.alloc(chunk)), sha(Buffer.alloc(chunk)), sha(Buffer.alloc(chunk))];
    const { frames, code, stderr } = runAgent({
      version: AGENT_PROTOCOL_VERSION,
      chunkSize: chunk,
      previousStartLsn: '0/1000',
      pageSize: 8192,
      files: [
        { path: path.join(dir, 'rel'), hashes: prev, previousSize: bytes.length, lsnPages: true },
        // Not marked as a relation main fork: every chunk hashed.
        { path: path.join(dir, 'other'), hashes: prev, previousSize: bytes.length },
        // Previous copy shorter: its chunk 0 had another length, not trusted.
        { path: path.join(dir, 'rel'), hashes: prev.slice(0, 1), previousSize: 8192, lsnPages: true },
      ],
    });
    assert.is(code, 0, stderr);
    assert.equal(
      frames.map((f) => f.type),
      ['hello', 'same', 'chunk', 'chunk', 'end', 'chunk', 'chunk', 'chunk', 'end', 'chunk', 'chunk', 'chunk', 'end', 'done'],
    );
    assert.equal(frames[13], { type: 'done', files: 3, bytesRead: 3 * bytes.length, lsnSkipped: 1, walSkipped: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unchanged ranges (from the WAL): whole chunks there are sent as same without being read; never past either size', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-agent-'));
  try {
    const chunk = 4096;
    const bytes = Buffer.concat([1, 2, 3, 4].map((n) => Buffer.alloc(chunk, n)));
    writeFileSync(path.join(dir, 'rel'), bytes);
    writeFileSync(path.join(dir, 'longer'), Buffer.concat([bytes, Buffer.alloc(100, 5)]));
    // Hashes that match nothing: any chunk read is sent as new.
    const prev = [9, 9, 9, 9].map((n) => sha(Buffer.alloc(chunk, n)));
    const { frames, code, stderr } = runAgent({
      version: AGENT_PROTOCOL_VERSION,
      chunkSize: chunk,
      files: [
        { path: path.join(dir, 'rel'), hashes: prev, previousSize: bytes.length, unchanged: [[1, 3]] },
        // The previous copy had two chunks: chunks 2 and 3 are read whatever the ranges say.
        { path: path.join(dir, 'rel'), hashes: prev.slice(0, 2), previousSize: 2 * chunk, unchanged: [[0, 4]] },
        // A range reaching the file's short last chunk: that one is read.
        { path: path.join(dir, 'longer'), hashes: [...prev, sha(Buffer.alloc(100, 5))], previousSize: bytes.length + 100, unchanged: [[3, 5]] },
      ],
    });
    assert.is(code, 0, stderr);
    assert.equal(
      frames.map((f) => f.type),
      ['hello', 'chunk', 'same', 'same', 'chunk', 'end', 'same', 'same', 'chunk', 'chunk', 'end', 'chunk', 'chunk', 'chunk', 'same', 'same', 'end', 'done'],
    );
    assert.equal(frames[5], { type: 'end', size: bytes.length, missing: false });
    assert.equal(frames[16], { type: 'end', size: bytes.length + 100, missing: false });
    assert.equal(frames[17], { type: 'done', files: 3, bytesRead: 3 * bytes.length + 100 - 5 * chunk, lsnSkipped: 0, walSkipped: 5 });
    const bad = runAgent({
      version: AGENT_PROTOCOL_VERSION,
      chunkSize: chunk,
      files: [{ path: path.join(dir, 'rel'), unchanged: [[2, 1]] as [number, number][] }],
    });
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /bad unchanged chunk ranges/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chunks read by the worker threads leave in file order, a file of whole chunks ends without an empty one', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-agent-'));
  try {
    const chunk = 4096;
    const n = 40; // many more than the chunks in flight (workers × 3)
    const parts = Array.from({ length: n }, (_, i) => Buffer.alloc(chunk, i + 1));
    writeFileSync(path.join(dir, 'big'), Buffer.concat(parts));
    writeFileSync(path.join(dir, 'small'), 'x');
    // Every third chunk changed since the previous backup.
    const prev = parts.map((p, i) => (i % 3 === 0 ? sha(Buffer.alloc(chunk, 200)) : sha(p)));
    const { frames, code, stderr } = runAgent({
      version: AGENT_PROTOCOL_VERSION,
      chunkSize: chunk,
      files: [{ path: path.join(dir, 'big'), hashes: prev, previousSize: n * chunk }, { path: path.join(dir, 'small') }],
    });
    assert.is(code, 0, stderr);
    const big = frames.slice(1, n + 1);
    big.forEach((f, i) => {
      if (i % 3 !== 0) assert.is(f.type, 'same', `chunk ${i}`);
      else assert.ok(f.type === 'chunk' && f.data.equals(parts[i]!), `chunk ${i}`);
    });
    assert.equal(frames[n + 1], { type: 'end', size: n * chunk, missing: false });
    assert.is(frames[n + 2]!.type, 'chunk');
    assert.equal(frames[n + 3], { type: 'end', size: 1, missing: false });
    assert.equal(frames[n + 4], { type: 'done', files: 2, bytesRead: n * chunk + 1, lsnSkipped: 0, walSkipped: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('profile: the agent reports its phase timings on stderr, frames unchanged', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-agent-'));
  try {
    writeFileSync(path.join(dir, 'a'), 'abc');
    const req = { version: AGENT_PROTOCOL_VERSION, chunkSize: 4096, files: [{ path: path.join(dir, 'a') }] };
    const plain = runAgent(req);
    const profiled = runAgent({ ...req, profile: true });
    assert.is(profiled.code, 0, profiled.stderr);
    assert.equal(profiled.frames, plain.frames);
    assert.is(plain.stderr, '');
    assert.match(
      profiled.stderr,
      /^\[profile\] agent request read .*\n\[profile\] agent files dispatched .*\n\[profile\] agent last frame sent: 0 MB read, 0 chunks by page LSN/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
test.run();
