import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compressBuffer, decompressToFd } from '../../../src/catalog/compress.js';
import { sha256Hex, sha256Hasher } from '../../../src/lib/checksum.js';

/** ~3 MiB: noise repeated 400 KiB later (matches across the ring's wraps), text, zero runs. */
function content(): Buffer {
  let seed = 7;
  const parts: Buffer[] = [];
  for (let i = 0; i < 4; i++) {
    const r = Buffer.allocUnsafe(150 << 10);
    for (let j = 0; j < r.length; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      r[j] = seed >>> 24;
    }
    parts.push(r, Buffer.from('WAL-ish '.repeat(20000)), r, Buffer.alloc(250 << 10));
  }
  return Buffer.concat(parts);
}

function zstdCli(args: readonly string[], input: Buffer): Buffer {
  const r = spawnSync('zstd', ['-q', ...args], { input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`zstd ${args.join(' ')}: ${r.stderr.toString()}`);
  return r.stdout;
}

function withFile<T>(fn: (fd: number, file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbk-dtfd-'));
  const file = path.join(dir, 'out');
  const fd = openSync(file, 'w+', 0o600);
  return fn(fd, file).finally(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
}

const big = content();
const small = Buffer.from('a small file\n'.repeat(100));

test("decompressToFd writes the content at its position, for our frames and the zstd CLI's (sized, piped), large and small", async () => {
  const frames: [string, Buffer, Buffer][] = [
    ['ours, ring', await compressBuffer(big, 'zstd'), big],
    ['zstd -1 --stream-size', zstdCli(['-1', '--check', '-c', '--stream-size', String(big.length)], big), big],
    ['zstd -1 from a pipe (no content size)', zstdCli(['-1', '-c'], big), big],
    ['ours, small', await compressBuffer(small, 'zstd'), small],
  ];
  for (const [what, frame, want] of frames) {
    await withFile(async (fd, file) => {
      const hash = sha256Hasher();
      const n = await decompressToFd(frame, 'zstd', fd, 4096, { tap: (run) => hash.update(Buffer.from(run.buffer, run.byteOffset, run.byteLength)) });
      assert.is(n, want.length, what);
      const got = readFileSync(file);
      assert.is(got.length, 4096 + want.length, what);
      assert.ok(got.subarray(4096).equals(want), `${what}: content`);
      assert.is(hash.hex(), sha256Hex(want), `${what}: tap saw every byte once, in order`);
    });
  }
  // And the CLI reads what it came from: the frames are the standard ones (the file equals `zstd -d`'s output).
  const ours = await compressBuffer(big, 'zstd');
  assert.ok(zstdCli(['-d', '-c'], ours).equals(big));
});

test('decompressToFd refuses a corrupt frame, a truncated one and a non-zstd input', async () => {
  const frame = await compressBuffer(big, 'zstd');
  for (const at of [Math.floor(frame.length / 3), frame.length - 10]) {
    const bad = Buffer.from(frame);
    bad[at] = bad[at]! ^ 0x5a;
    await withFile((fd) => decompressToFd(bad, 'zstd', fd, 0)).then(
      () => assert.unreachable(`damage at ${at} not detected`),
      (err: Error) =>
        assert.match(
          err.message,
          /zstd: (content checksum mismatch|corrupt data|content larger than the frame header says|Restored data doesn't match checksum|Data corruption detected)/,
        ),
    );
  }
  await withFile((fd) => decompressToFd(frame.subarray(0, frame.length - 100), 'zstd', fd, 0)).then(
    () => assert.unreachable('truncated frame accepted'),
    (err: Error) => assert.match(err.message, /zstd: /),
  );
  await withFile((fd) => decompressToFd(Buffer.from('not zstd at all'), 'zstd', fd, 0)).then(
    () => assert.unreachable('non-zstd accepted'),
    (err: Error) => assert.match(err.message, /not a zstd frame/),
  );
  // The decoder is still good afterwards.
  await withFile(async (fd, file) => {
    await decompressToFd(frame, 'zstd', fd, 0);
    assert.ok(readFileSync(file).equals(big));
  });
});

test('decompressToFd refuses content of another length than expected, before writing when the header says so', async () => {
  for (const [what, frame] of [
    ['ours', await compressBuffer(big, 'zstd')],
    ['from a pipe', zstdCli(['-1', '-c'], big)],
  ] as const) {
    await withFile(async (fd, file) => {
      await decompressToFd(frame, 'zstd', fd, 0, { expectedLength: big.length - 1 }).then(
        () => assert.unreachable(`${what}: wrong length accepted`),
        (err: Error) => assert.match(err.message, new RegExp(`holds ${big.length} bytes, ${big.length - 1} expected`)),
      );
      if (what === 'ours') assert.is(readFileSync(file).length, 0, 'nothing written: the header declared the size');
    });
  }
  for (const kind of ['gzip', 'none'] as const) {
    await withFile(async (fd, file) => {
      const c = await compressBuffer(small, kind);
      assert.is(await decompressToFd(c, kind, fd, 0, { expectedLength: small.length }), small.length);
      assert.ok(readFileSync(file).equals(small), kind);
      await decompressToFd(c, kind, fd, 0, { expectedLength: 1 }).then(
        () => assert.unreachable(`${kind}: wrong length accepted`),
        (err: Error) => assert.match(err.message, /expected/),
      );
    });
  }
});

test.run();
