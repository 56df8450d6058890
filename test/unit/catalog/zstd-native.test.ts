import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  compressInto,
  decompressPieces,
  decompressWhole,
  frameContentSize,
  hasNativeEncoder,
  zstdCodec,
  zstdDecoder,
  zstdDecoderFor,
} from '../../../src/catalog/zstd.js';
import { sha256Hex, sha256Hasher } from '../../../src/lib/checksum.js';
import { frameBound } from '../../../src/catalog/zstd-frame.js';

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

test('frames that declare their size are decoded by the native decoder (zstd-napi, an optional dependency installed here), empty ones by the WebAssembly one', async () => {
  const codec = await zstdCodec();
  assert.is(zstdDecoderFor(codec.compress(data, 1)), 'native');
  assert.is(zstdDecoderFor(codec.compress(Buffer.concat([data, data, data]), 1)), 'native', 'a 3 MiB frame: in pieces');
  assert.is(zstdDecoderFor(codec.compress(Buffer.alloc(0), 1)), 'wasm', 'empty');
});

test('decompressToFd writes a 16 MiB segment in pieces at its position, taps every byte once in order, and refuses another length before writing', async () => {
  const codec = await zstdCodec();
  const segment = Buffer.concat(Array.from({ length: 16 }, (_, i) => Buffer.concat([data.subarray(0, (1 << 20) - 8), Buffer.from(`seg ${i}`.padEnd(8))])));
  const frame = codec.compress(segment, 1);
  assert.is(zstdDecoderFor(frame), 'native');
  withFile((fd, file) => {
    const tapped = sha256Hasher();
    let runs = 0;
    const n = zstdDecoder().decompressToFd(frame, fd, 4096, {
      tap: (run) => {
        runs++;
        tapped.update(Buffer.from(run.buffer, run.byteOffset, run.byteLength));
      },
    });
    assert.is(n, segment.length);
    const written = readFileSync(file);
    assert.is(written.length, 4096 + segment.length);
    assert.ok(written.subarray(4096).equals(segment));
    assert.is(tapped.hex(), sha256Hex(segment));
    assert.ok(runs >= 16, `${runs} runs: in pieces, not whole`);
  });
  withFile((fd, file) => {
    assert.throws(() => zstdDecoder().decompressToFd(frame, fd, 0, { expectedLength: segment.length - 1 }), /holds 16777216 bytes, 16777215 expected/);
    assert.is(readFileSync(file).length, 0, 'nothing written: the header declared the size');
    const bad = Buffer.from(frame);
    bad[frame.length - 2] = bad[frame.length - 2]! ^ 0x5a;
    assert.throws(() => zstdDecoder().decompressToFd(bad, fd, 0), /zstd: /, 'a damaged content checksum');
  });
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
  assert.is(zstdDecoderFor(frame), 'native');
  const a = decompressWhole(frame);
  const b = decompressWhole(frame);
  assert.ok(a.equals(segment));
  assert.ok(b.equals(segment));
  assert.is.not(a.buffer, b.buffer, 'each call returns its own memory (the scan holds one segment while reading the next)');
  assert.ok(decompressWhole(codec.compress(Buffer.alloc(0), 1)).equals(Buffer.alloc(0)), 'empty: the WebAssembly decoder');
  for (const at of [Math.floor(frame.length / 2), frame.length - 2]) {
    const bad = Buffer.from(frame);
    bad[at] = bad[at]! ^ 0x5a;
    assert.is(zstdDecoderFor(bad), 'native');
    assert.throws(() => decompressWhole(bad), /zstd: /, `byte ${at}`);
  }
  assert.throws(() => decompressWhole(frame.subarray(0, frame.length - 50)), /zstd: /, 'truncated');
  assert.throws(() => decompressWhole(Buffer.from('not zstd at all')), /zstd: not a zstd frame/);
});

test("decompressWhole into a caller's buffer: a view of it when the content fits, a Buffer of its own when not", async () => {
  const codec = await zstdCodec();
  const frame = codec.compress(data, 1);
  const into = Buffer.alloc(data.length + 4096, 0xee);
  const a = decompressWhole(frame, into);
  assert.ok(a.equals(data));
  assert.is(a.buffer, into.buffer, 'decoded in place');
  assert.is(into[data.length], 0xee, 'nothing written past the content');
  const small = Buffer.alloc(data.length - 1);
  const b = decompressWhole(frame, small);
  assert.ok(b.equals(data));
  assert.is.not(b.buffer, small.buffer, 'too small: its own memory');
  const bad = Buffer.from(frame);
  bad[frame.length - 2] = bad[frame.length - 2]! ^ 0x5a;
  assert.throws(() => decompressWhole(bad, into), /zstd: /, 'a damaged checksum is refused in place too');
});

test('decompressPieces hands out a 16 MiB segment in pieces of the buffer it is given, and refuses damage, truncation and trailing bytes once the frame ends', async () => {
  const codec = await zstdCodec();
  const segment = Buffer.concat(Array.from({ length: 16 }, (_, i) => Buffer.concat([data.subarray(0, (1 << 20) - 8), Buffer.from(`seg ${i}`.padEnd(8))])));
  const frame = codec.compress(segment, 1);
  const out = Buffer.alloc(3 << 18); // 768 KiB: the last piece is shorter
  const collect = (f: Buffer): { offsets: number[]; lengths: number[]; content: Buffer; n: number } => {
    const offsets: number[] = [];
    const lengths: number[] = [];
    const parts: Buffer[] = [];
    const n = decompressPieces(f, out, (piece, offset) => {
      assert.is(piece.buffer, out.buffer, 'a view of the buffer given');
      offsets.push(offset);
      lengths.push(piece.length);
      parts.push(Buffer.from(piece));
    });
    return { offsets, lengths, content: Buffer.concat(parts), n };
  };
  const r = collect(frame);
  assert.is(r.n, segment.length);
  assert.ok(r.content.equals(segment));
  assert.ok(
    r.lengths.slice(0, -1).every((l) => l === out.length),
    'every piece but the last fills the buffer',
  );
  assert.equal(
    r.offsets,
    r.lengths.map((_, i) => i * out.length),
  );
  for (const at of [Math.floor(frame.length / 2), frame.length - 2]) {
    const bad = Buffer.from(frame);
    bad[at] = bad[at]! ^ 0x5a;
    assert.throws(() => collect(bad), /zstd: /, `byte ${at}`);
  }
  assert.throws(() => collect(frame.subarray(0, frame.length - 50)), /zstd: /, 'truncated');
  assert.throws(() => collect(Buffer.concat([frame, Buffer.from('junk')])), /zstd: 4 bytes follow the frame/, 'trailing bytes');
  // The decoder is reset after a failure: the next frame decodes.
  assert.ok(collect(frame).content.equals(segment));
  const empty = collect(codec.compress(Buffer.alloc(0), 1));
  assert.is(empty.n, 0);
  assert.is(empty.offsets.length, 0, 'no piece for no content');
});

test('compressInto writes the frame `zstd --check` writes straight into the buffer given: content size, checksum, readable by the zstd CLI and by our decoders', async () => {
  assert.ok(hasNativeEncoder(), 'zstd-napi is installed here');
  const segment = Buffer.concat(Array.from({ length: 4 }, (_, i) => Buffer.concat([data.subarray(0, (1 << 20) - 8), Buffer.from(`seg ${i}`.padEnd(8))])));
  const out = Buffer.alloc(frameBound(segment.length));
  const n = compressInto(segment, 1, out)!;
  assert.ok(n > 0 && n < segment.length, `${n} bytes`);
  const frame = Buffer.from(out.subarray(0, n));
  assert.is(frameContentSize(frame), segment.length, 'the header declares the content size');
  assert.ok((frame[4]! & 0x04) !== 0, 'the frame descriptor has the content checksum flag');
  assert.ok(decompressWhole(frame).equals(segment));
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbk-zenc-'));
  try {
    writeFileSync(path.join(dir, 'seg.zst'), frame);
    execFileSync('zstd', ['-q', '-t', path.join(dir, 'seg.zst')]);
    assert.ok(execFileSync('zstd', ['-q', '-d', '-c', path.join(dir, 'seg.zst')], { maxBuffer: 64 << 20 }).equals(segment), 'the zstd CLI reads it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const bad = Buffer.from(frame);
  bad[n - 2] = bad[n - 2]! ^ 0x5a;
  assert.throws(() => decompressWhole(bad), /zstd: /, 'the content checksum catches damage');
  // The level is the caller's: level 19 writes a smaller frame of the same content.
  const n19 = compressInto(segment, 19, out)!;
  assert.ok(n19 < n, `${n19} < ${n}`);
  assert.ok(decompressWhole(Buffer.from(out.subarray(0, n19))).equals(segment));
  assert.throws(() => compressInto(segment, 1, Buffer.alloc(100)), /zstd: /, 'too small a buffer is an error, not a cut frame');
});

test.run();
