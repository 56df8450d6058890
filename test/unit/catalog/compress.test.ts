import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMPRESSIONS, compressBuffer, compressParts, compressionOfFile, decompressBuffer, extensionFor } from '../../../src/catalog/compress.js';
import { completeFrame, completeFrameParts, frameContentSize, zstdDecoderMemoryBytes } from '../../../src/catalog/zstd.js';

const sample = Buffer.concat([Buffer.from('WAL-ish '.repeat(10000)), Buffer.alloc(100000), Buffer.from([1, 2, 3, 255])]);

/** The `zstd` CLI: the reference reader and writer of standard frames. */
function zstdCli(args: readonly string[], input: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('zstd', [...args], { input, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

test('buffer round trip for every compression; zstd and gzip shrink', async () => {
  for (const kind of COMPRESSIONS) {
    const c = await compressBuffer(sample, kind);
    assert.ok((await decompressBuffer(c, kind)).equals(sample), kind);
    if (kind !== 'none') assert.ok(c.length < sample.length / 10, `${kind} compresses`);
  }
  assert.is((await compressBuffer(sample, 'zstd')).readUInt32LE(0), 0xfd2fb528, 'zstd frame magic');
  assert.is((await compressBuffer(sample, 'gzip'))[0], 0x1f);
});

test('zstd frames carry the content size and a content checksum: a flipped byte is detected', async () => {
  const c = Buffer.from(await compressBuffer(sample, 'zstd'));
  assert.ok((c[4]! & 0x04) !== 0, 'Content_Checksum_flag set in the frame header descriptor');
  assert.is(frameContentSize(c), sample.length);
  c[c.length - 10] = c[c.length - 10]! ^ 0xff;
  await decompressBuffer(c, 'zstd').then(
    () => assert.unreachable('damage not detected'),
    (err: Error) => assert.match(err.message, /zstd: (content checksum mismatch|corrupt data)/),
  );
  const sum = Buffer.from(await compressBuffer(sample, 'zstd'));
  sum[sum.length - 1] = sum[sum.length - 1]! ^ 0x01; // only the checksum itself
  await decompressBuffer(sum, 'zstd').then(
    () => assert.unreachable('checksum not verified'),
    (err: Error) => assert.match(err.message, /content checksum mismatch/),
  );
});

test('frames larger than their window stream through a ring: read exactly, damage found, the decoder stays small', async () => {
  // ~5 MiB: incompressible runs, each again 400 KiB later (matches reaching back across the ring's
  // wraps, window 512 KiB at level 1), text, and zero runs (RLE blocks).
  let seed = 1;
  const noise = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      b[i] = seed >>> 24;
    }
    return b;
  };
  const parts: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    const r = noise(200 << 10);
    parts.push(r, Buffer.from('WAL-ish '.repeat(25600)), r, Buffer.alloc(300 << 10));
  }
  const big = Buffer.concat(parts);
  const ours = await compressBuffer(big, 'zstd');
  const cli = zstdCli(['-1', '-c', '-q', '--stream-size', String(big.length)], big).stdout;
  assert.is(frameContentSize(cli), big.length);
  for (const [what, frame] of [
    ['ours', ours],
    ["zstd -1's", cli],
  ] as const) {
    assert.ok((await decompressBuffer(frame, 'zstd')).equals(big), what);
    // The decoder holds the frame and a ring, not the whole content.
    assert.ok(zstdDecoderMemoryBytes() < frame.length + (2 << 20), `${what}: decoder memory ${zstdDecoderMemoryBytes()} for a ${frame.length}-byte frame`);
    for (const at of [Math.floor(frame.length / 2), frame.length - 10]) {
      const bad = Buffer.from(frame);
      bad[at] = bad[at]! ^ 0x5a;
      await decompressBuffer(bad, 'zstd').then(
        () => assert.unreachable(`${what}: damage at ${at} of ${frame.length} not detected`),
        (err: Error) => assert.match(err.message, /zstd: (content checksum mismatch|corrupt data|content larger than the frame header says)/),
      );
    }
    await decompressBuffer(frame.subarray(0, frame.length - 100), 'zstd').then(
      () => assert.unreachable(`${what}: truncated frame accepted`),
      (err: Error) => assert.match(err.message, /zstd: /),
    );
    // A failed frame leaves nothing behind for the next one.
    assert.ok((await decompressBuffer(frame, 'zstd')).equals(big), `${what} after errors`);
  }
});

test("zstd frames are standard: the zstd CLI tests and reads ours, and we read the CLI's (also without content size)", async () => {
  for (const data of [sample, Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(300, 7)]) {
    const ours = await compressBuffer(data, 'zstd');
    assert.is(zstdCli(['-t', '-q'], ours).status, 0, `zstd -t on our frame of ${data.length} bytes`);
    assert.ok(zstdCli(['-d', '-c', '-q'], ours).stdout.equals(data), `zstd -d of ${data.length} bytes`);
  }
  // From stdin the CLI writes no content size: the other decoder handles it.
  const cli = zstdCli(['-1', '-c', '-q'], sample).stdout;
  assert.is(frameContentSize(cli), undefined);
  assert.ok((await decompressBuffer(cli, 'zstd')).equals(sample));
  const fromFileLike = zstdCli(['-1', '-c', '-q', '--stream-size', String(sample.length)], sample).stdout;
  assert.ok((await decompressBuffer(fromFileLike, 'zstd')).equals(sample));
});

test('frames without a content size far larger than the first guess, and concatenated frames, read whole', async () => {
  // 24 MiB that compress to a few kB: the decoder's first buffer (16× the frame, at least 1 MiB) is
  // far too small and must grow until the content fits.
  const big = Buffer.concat([Buffer.alloc(24 << 20), sample]);
  const piped = zstdCli(['-1', '-c', '-q'], big).stdout;
  assert.is(frameContentSize(piped), undefined);
  assert.ok(piped.length * 16 < big.length);
  assert.ok((await decompressBuffer(piped, 'zstd')).equals(big));
  // `cat a.zst b.zst` is a valid zstd stream: both contents, in order.
  const two = Buffer.concat([await compressBuffer(sample, 'zstd'), await compressBuffer(Buffer.from('tail'), 'zstd')]);
  assert.ok((await decompressBuffer(two, 'zstd')).equals(Buffer.concat([sample, Buffer.from('tail')])));
  await decompressBuffer(Buffer.from('not zstd at all'), 'zstd').then(
    () => assert.unreachable('garbage accepted'),
    (err: Error) => assert.match(err.message, /zstd: not a zstd frame/),
  );
});

test('frames written by zstd-napi (catalogs made before issue 10) still read, and zstd-napi reads ours', async () => {
  const require = createRequire(import.meta.url);
  let napi: { compress(b: Buffer, p: object): Buffer; decompress(b: Buffer): Buffer };
  try {
    napi = require('zstd-napi') as typeof napi; // devDependency: present where the tests run
  } catch {
    return;
  }
  const old = napi.compress(sample, { compressionLevel: 1, checksumFlag: true });
  assert.ok((await decompressBuffer(old, 'zstd')).equals(sample));
  assert.ok(napi.decompress(await compressBuffer(sample, 'zstd')).equals(sample));
});

test('completeFrame adds the content size and checksum once, leaving complete frames alone', () => {
  // A frame as the native encoder writes it: no single-segment flag, window descriptor, no FCS,
  // no checksum (one raw block holding "abc").
  const bare = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x48, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63]);
  const done = completeFrame(bare, 3, 0x11223344);
  assert.is(done[4], 0x84);
  assert.is(frameContentSize(done), 3);
  assert.is(done.readUInt32LE(done.length - 4), 0x11223344);
  assert.is(done.length, bare.length + 8);
  assert.ok(completeFrame(done, 3, 0x11223344).equals(done), 'idempotent');
  assert.throws(() => completeFrame(Buffer.from('not a frame'), 3, 0), /did not write a zstd frame/);
});

test("completeFrameParts: the same frame as pieces, the blocks a view of the encoder's buffer (not copied)", () => {
  const bare = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x48, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63]);
  const parts = completeFrameParts(bare, 3, 0x11223344);
  assert.equal(Buffer.concat(parts), completeFrame(bare, 3, 0x11223344));
  assert.is(parts.length, 3);
  assert.is(parts[1]!.buffer, bare.buffer, 'the blocks are not copied');
  assert.is(bare[4], 0x00, "the encoder's header is left as it was (a new one is written)");
  const done = completeFrame(bare, 3, 0x11223344);
  assert.equal(completeFrameParts(done, 3, 0x11223344), [done], 'a complete frame is one piece, itself');
});

test('compressParts: pieces that make the frame compress() writes, which any zstd reads', async () => {
  const data = Buffer.concat([Buffer.alloc(300_000, 1), Buffer.from('some text to compress '.repeat(5000))]);
  const parts = await compressParts(data, 'zstd');
  const frame = Buffer.concat(parts);
  assert.equal(frame, await compressBuffer(data, 'zstd'));
  assert.equal(await decompressBuffer(frame, 'zstd'), data);
  assert.equal(await compressParts(data, 'gzip').then((p) => zlib.gunzipSync(Buffer.concat(p))), data);
  assert.equal(await compressParts(data, 'none'), [data]);
});

test('extensions', () => {
  assert.equal(COMPRESSIONS.map(extensionFor), ['.zst', '.gz', '']);
  assert.is(compressionOfFile('x.zst'), 'zstd');
  assert.is(compressionOfFile('x.gz'), 'gzip');
  assert.is(compressionOfFile('000000010000000000000001'), 'none');
});

test.run();
