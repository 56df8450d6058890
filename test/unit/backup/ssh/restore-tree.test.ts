import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkWriter, FileChunker } from '../../../../src/backup/ssh/chunk-writer.js';
import { formatManifest, type ManifestFile } from '../../../../src/backup/ssh/incremental.js';
import { copyTreeInto } from '../../../../src/backup/ssh/restore-tree.js';
import { storedTreeAt } from '../../../../src/backup/ssh/stored-tree.js';
import { PgbkError } from '../../../../src/errors.js';

const CHUNK = 4;

/** A compressed `ssh` backup of `files` (path under data/ → bytes) in dir, with its files.json. */
async function storedBackup(dir: string, files: Readonly<Record<string, Buffer>>): Promise<void> {
  await mkdir(path.join(dir, 'data', 'sub'), { recursive: true });
  const writer = new ChunkWriter(dir, undefined, CHUNK, 1);
  await writer.init();
  const recs: ManifestFile[] = [];
  for (const [rel, bytes] of Object.entries(files)) {
    writer.begin({ file: { path: `data/${rel}`, size: bytes.length, mtimeMs: 1_600_000_000_000, mode: 0o640 } });
    const chunker = new FileChunker(writer, undefined, CHUNK);
    await chunker.feed(bytes);
    await chunker.close();
    recs.push(await writer.end());
  }
  await writer.flush();
  recs.sort((a, b) => (a.path < b.path ? -1 : 1));
  await writeFile(
    path.join(dir, 'files.json'),
    formatManifest({ listedAtMs: 0, pgdata: '/pg', tablespaces: [], chunkSize: CHUNK, compression: 'zstd', files: recs }),
  );
}

test('copyTreeInto: files rebuilt from many chunks by the thread pool, at their offsets, with modes, mtimes and every byte', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-rtree-'));
  try {
    const src = path.join(root, 'backup');
    // 1000 chunks of 4 bytes, each different: any chunk at a wrong offset shows.
    const big = Buffer.from(Array.from({ length: 1000 }, (_, i) => i.toString(16).padStart(4, '0')).join(''));
    const files = { big, small: Buffer.from('abc'), empty: Buffer.alloc(0), 'sub/x': Buffer.from('hello world!!') };
    await storedBackup(src, files);
    const dest = path.join(root, 'restored');
    await mkdir(dest, { mode: 0o700 });
    await copyTreeInto(storedTreeAt(src), 'data', dest, 'main');
    for (const [rel, bytes] of Object.entries(files)) {
      const file = path.join(dest, rel);
      assert.ok((await readFile(file)).equals(bytes), rel);
      const st = await stat(file);
      assert.is(st.mode & 0o777, 0o640, rel);
      assert.is(st.mtimeMs, 1_600_000_000_000, rel);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('copyTreeInto: a damaged chunk fails the restore with a CATALOG error naming it, after the other writes settled', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-rtree-'));
  try {
    const src = path.join(root, 'backup');
    await storedBackup(src, { big: Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(10)) });
    const chunk = path.join(src, 'data', 'big.pgbk-chunks', '00000007');
    await writeFile(chunk, Buffer.from('not a zstd frame'));
    const dest = path.join(root, 'restored');
    await mkdir(dest, { mode: 0o700 });
    try {
      await copyTreeInto(storedTreeAt(src), 'data', dest, 'main');
      assert.unreachable('restored a damaged backup');
    } catch (err) {
      assert.instance(err, PgbkError);
      assert.is((err as PgbkError).code, 'CATALOG');
      assert.match((err as PgbkError).message, 'big.pgbk-chunks/00000007');
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
