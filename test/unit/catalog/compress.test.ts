import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  COMPRESSIONS,
  compressBuffer,
  compressStream,
  compressionOfFile,
  decompressBuffer,
  decompressStream,
  extensionFor,
} from '../../../src/catalog/compress.js';

const sample = Buffer.concat([Buffer.from('WAL-ish '.repeat(10000)), Buffer.alloc(100000), Buffer.from([1, 2, 3, 255])]);

async function collect(chunks: readonly Buffer[], stage: Transform): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk);
      done();
    },
  });
  await pipeline(Readable.from(chunks), stage, sink);
  return Buffer.concat(out);
}

test('buffer round trip for every compression; zstd and gzip shrink', () => {
  for (const kind of COMPRESSIONS) {
    const c = compressBuffer(sample, kind);
    assert.ok(decompressBuffer(c, kind).equals(sample), kind);
    if (kind !== 'none') assert.ok(c.length < sample.length / 10, `${kind} compresses`);
  }
  assert.is(compressBuffer(sample, 'zstd').readUInt32LE(0), 0xfd2fb528, 'zstd frame magic');
  assert.is(compressBuffer(sample, 'gzip')[0], 0x1f);
});

test('zstd frames carry a content checksum: a flipped byte is detected', () => {
  const c = Buffer.from(compressBuffer(sample, 'zstd'));
  assert.ok((c[4]! & 0x04) !== 0, 'Content_Checksum_flag set in the frame header descriptor');
  c[c.length - 10] = c[c.length - 10]! ^ 0xff;
  assert.throws(() => decompressBuffer(c, 'zstd'));
});

test('streams interoperate with buffers', async () => {
  const chunks = [sample.subarray(0, 1000), sample.subarray(1000, 50000), sample.subarray(50000)];
  for (const kind of COMPRESSIONS) {
    const streamed = await collect(chunks, compressStream(kind));
    assert.ok(decompressBuffer(streamed, kind).equals(sample), `stream → buffer ${kind}`);
    const back = await collect([compressBuffer(sample, kind)], decompressStream(kind));
    assert.ok(back.equals(sample), `buffer → stream ${kind}`);
  }
});

test('extensions', () => {
  assert.equal(COMPRESSIONS.map(extensionFor), ['.zst', '.gz', '']);
  assert.is(compressionOfFile('x.zst'), 'zstd');
  assert.is(compressionOfFile('x.gz'), 'gzip');
  assert.is(compressionOfFile('000000010000000000000001'), 'none');
});

test.run();
