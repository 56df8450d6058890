import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkWriter, FileChunker } from '../../../../src/backup/ssh/chunk-writer.js';
import type { ManifestFile } from '../../../../src/backup/ssh/incremental.js';
import { zstdCodec } from '../../../../src/catalog/zstd.js';

const CHUNK = 4;
const file = (p: string, size: number): { path: string; size: number; mtimeMs: number; mode: number } => ({ path: p, size, mtimeMs: 1, mode: 0o600 });

async function store(
  dir: string,
  prevDir: string | undefined,
  p: string,
  bytes: string,
  prev?: ManifestFile & { hashes: readonly string[] },
): Promise<{ rec: ManifestFile; writer: ChunkWriter }> {
  const writer = new ChunkWriter(dir, prevDir, CHUNK);
  writer.begin(prev === undefined ? { file: file(p, bytes.length) } : { file: file(p, bytes.length), prev });
  const chunker = new FileChunker(writer, prev?.hashes, CHUNK);
  // Arrives in odd pieces, as from a tar stream.
  for (let i = 0; i < bytes.length; i += 3) await chunker.feed(Buffer.from(bytes.slice(i, i + 3)));
  await chunker.close();
  const rec = await writer.end();
  await writer.flush();
  return { rec, writer };
}

test('chunks: plain file for one chunk, a chunk directory for more; equal chunks hard-linked from the previous backup', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-chunks-'));
  try {
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    await mkdir(path.join(a, 'data'), { recursive: true });
    await mkdir(path.join(b, 'data'), { recursive: true });
    const small = await store(a, undefined, 'data/small', 'abc');
    assert.is(await readFile(path.join(a, 'data/small'), 'utf8'), 'abc');
    assert.equal(small.rec.hashes, [createHash('sha256').update('abc').digest('hex')]);
    const empty = await store(a, undefined, 'data/empty', '');
    assert.is(empty.rec.hashes?.length, 1);
    assert.is((await stat(path.join(a, 'data/empty'))).size, 0);

    const first = await store(a, undefined, 'data/big', 'AAAABBBBCCCCDD');
    assert.is(first.rec.hashes?.length, 4);
    assert.is(first.writer.totals.copiedBytes, 14);
    assert.is(await readFile(path.join(a, 'data/big.pgbk-chunks/00000003'), 'utf8'), 'DD');

    // Next backup: chunk 1 changed, the file grew by one chunk.
    const prev = first.rec as ManifestFile & { hashes: readonly string[] };
    const second = await store(b, a, 'data/big', 'AAAAXXXXCCCCDDEE', prev);
    assert.is(second.rec.size, 16);
    assert.is(second.writer.totals.reusedBytes, 8);
    assert.is(second.writer.totals.copiedBytes, 8);
    const ino = async (d: string, i: string): Promise<number> => (await stat(path.join(d, 'data/big.pgbk-chunks', i))).ino;
    assert.is(await ino(b, '00000000'), await ino(a, '00000000'));
    assert.is(await ino(b, '00000002'), await ino(a, '00000002'));
    assert.is.not(await ino(b, '00000001'), await ino(a, '00000001'));
    assert.is(await readFile(path.join(b, 'data/big.pgbk-chunks/00000003'), 'utf8'), 'DDEE');

    // A previously plain file that grew past one chunk: its first chunk links the plain file.
    const four = await store(a, undefined, 'data/four', 'abcd');
    const grown = await store(b, a, 'data/four', 'abcdefg', four.rec as ManifestFile & { hashes: readonly string[] });
    assert.is(grown.rec.hashes?.length, 2);
    assert.is((await stat(path.join(b, 'data/four.pgbk-chunks/00000000'))).ino, (await stat(path.join(a, 'data/four'))).ino);
    assert.is(await readFile(path.join(b, 'data/four.pgbk-chunks/00000001'), 'utf8'), 'efg');
    assert.not.ok(existsSync(path.join(b, 'data/four')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('compressed backup: chunks from the agent stored as its zstd frames, local data compressed here; totals count both sizes', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-chunks-'));
  try {
    await mkdir(path.join(root, 'data'), { recursive: true });
    const codec = await zstdCodec();
    const writer = new ChunkWriter(root, undefined, 8, 1);
    await writer.init();
    writer.begin({ file: file('data/z', 12) });
    const a = Buffer.from('aaaaaaaa');
    await writer.compressed(createHash('sha256').update(a).digest('hex'), codec.compress(a, 1), 8);
    await writer.data(createHash('sha256').update('bbbb').digest('hex'), Buffer.from('bbbb'));
    const rec = await writer.end();
    await writer.flush();
    assert.is(rec.size, 12);
    assert.is(writer.totals.copiedBytes, 12);
    const c0 = await readFile(path.join(root, 'data/z.pgbk-chunks/00000000'));
    const c1 = await readFile(path.join(root, 'data/z.pgbk-chunks/00000001'));
    assert.is(writer.totals.storedBytes, c0.length + c1.length);
    assert.is(codec.decompress(c0).toString(), 'aaaaaaaa');
    assert.is(codec.decompress(c1).toString(), 'bbbb');
    // An uncompressed backup refuses a compressed chunk (nothing mixes formats within a backup).
    const plain = new ChunkWriter(root, undefined, 8);
    plain.begin({ file: file('data/y', 8) });
    assert.throws(() => plain.compressed('00', c0, 8), /compressed chunk/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
