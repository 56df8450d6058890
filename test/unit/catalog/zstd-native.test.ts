import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decompressWhole, zstdCodec, zstdDecoder, zstdDecoderFor, zstdWholeDecoderFor } from '../../../src/catalog/zstd.js';
import { sha256Hex, sha256Hasher } from '../../../src/lib/checksum.js';

/** One `ssh` chunk's worth (1 MiB): noise, text and zeros, as a relation file has. */
function chunk(): Buffer {
  let seed = 11;
  const noise = Buffer.allocUnsafe(256 << 10);
  for (let j = 0; j < noise.length; j++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    noise[j] = seed >>> 24;
  }
  const text = Buffer.from('tuple '.repeat(50_000));
  return Buffer.concat([noise, text, Buffer.alloc((1 << 20) - noise.length - text.length)]);
}

function withFile<T>(fn: (fd: number, file: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbk-znat-'));
  const fd = openSync(path.join(dir, 'out'), 'w+', 0o600);
  try {
    return fn(fd, path.join(dir, 'out'));
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

const data = chunk();

test('a chunk is decoded by the native decoder (zstd-napi, an optional dependency installed here), larger frames by the WebAssembly one', async () => {
  const codec = await zstdCodec();
  assert.is(zstdDecoderFor(codec.compress(data, 1)), 'native');
  assert.is(zstdDecoderFor(codec.compress(Buffer.concat([data, data, data]), 1)), 'wasm', 'a 3 MiB frame streams through the ring');
  assert.is(zstdDecoderFor(codec.compress(Buffer.alloc(0), 1)), 'wasm', 'empty');
});

test('zstdDecoder().decompressToFd writes a chunk at its position and taps every byte once', async () => {
  const frame = (await zstdCodec()).compress(data, 1);
  withFile((fd, file) => {
    const hash = sha256Hasher();
    const n = zstdDecoder().decompressToFd(frame, fd, 8192, {
      expectedLength: data.length,
      tap: (run) => hash.update(Buffer.from(run.buffer, run.byteOffset, run.byteLength)),
    });
    assert.is(n, data.length);
    assert.ok(readFileSync(file).subarray(8192).equals(data));
    assert.is(hash.hex(), sha256Hex(data));
  });
});

test('the native decoder refuses damaged blocks, a damaged content checksum, a truncated frame and another length than expected', async () => {
  const frame = (await zstdCodec()).compress(data, 1);
  const cases: [string, Buffer][] = [];
  for (const at of [Math.floor(frame.length / 2), frame.length - 2]) {
    const bad = Buffer.from(frame);
    bad[at] = bad[at]! ^ 0x5a;
    cases.push([`byte ${at} of ${frame.length}`, bad]);
  }
  cases.push(['truncated', frame.subarray(0, frame.length - 50)]);
  for (const [what, bad] of cases) {
    assert.is(zstdDecoderFor(bad), 'native', what);
    assert.throws(() => withFile((fd) => zstdDecoder().decompressToFd(bad, fd, 0)), /zstd: /, what);
  }
  withFile((fd, file) => {
    assert.throws(() => zstdDecoder().decompressToFd(frame, fd, 0, { expectedLength: data.length - 1 }), /holds 1048576 bytes, 1048575 expected/);
    assert.is(readFileSync(file).length, 0, 'nothing written: the header declared the size');
    // Still good afterwards.
    zstdDecoder().decompressToFd(frame, fd, 0);
    assert.ok(readFileSync(file).equals(data));
  });
});

test('decompressWhole decodes a 16 MiB segment with the native decoder into a Buffer of its own, and refuses damage as the WebAssembly one does', async () => {
  const codec = await zstdCodec();
  const segment = Buffer.concat(Array.from({ length: 16 }, (_, i) => Buffer.concat([data.subarray(0, (1 << 20) - 8), Buffer.from(`seg ${i}`.padEnd(8))])));
  const frame = codec.compress(segment, 1);
  assert.is(zstdWholeDecoderFor(frame), 'native');
  const a = decompressWhole(frame);
  const b = decompressWhole(frame);
  assert.ok(a.equals(segment));
  assert.ok(b.equals(segment));
  assert.is.not(a.buffer, b.buffer, 'each call returns its own memory (the scan holds one segment while reading the next)');
  assert.ok(decompressWhole(codec.compress(Buffer.alloc(0), 1)).equals(Buffer.alloc(0)), 'empty: the WebAssembly decoder');
  for (const at of [Math.floor(frame.length / 2), frame.length - 2]) {
    const bad = Buffer.from(frame);
    bad[at] = bad[at]! ^ 0x5a;
    assert.is(zstdWholeDecoderFor(bad), 'native');
    assert.throws(() => decompressWhole(bad), /zstd: /, `byte ${at}`);
  }
  assert.throws(() => decompressWhole(frame.subarray(0, frame.length - 50)), /zstd: /, 'truncated');
  assert.throws(() => decompressWhole(Buffer.from('not zstd at all')), /zstd: not a zstd frame/);
});

test.run();
