import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkWriter, FileChunker } from '../../../src/backup/ssh/chunk-writer.js';
import { formatManifest, type ManifestFile } from '../../../src/backup/ssh/incremental.js';
import { readStoredManifest } from '../../../src/backup/ssh/restore-tree.js';
import { storedTreeAt, type StoredObject } from '../../../src/backup/ssh/stored-tree.js';
import { zstdCodec } from '../../../src/catalog/zstd.js';
import { PgbkError } from '../../../src/errors.js';
import { copyChunkTree, TreeThreads } from '../../../src/restore/chunk-tree-copy.js';
import { jobsOfFile, RANGE_OBJECTS } from '../../../src/restore/chunk-tree-plan.js';

const CHUNK = 4;
const MTIME = 1_600_000_000_000;

/** A compressed `ssh` backup of `files` (path under data/ → bytes) in dir, with its files.json. */
async function storedBackup(dir: string, files: Readonly<Record<string, Buffer>>): Promise<void> {
  await mkdir(path.join(dir, 'data', 'sub'), { recursive: true });
  const writer = new ChunkWriter(dir, undefined, CHUNK, 1);
  await writer.init();
  const recs: ManifestFile[] = [];
  for (const [rel, bytes] of Object.entries(files)) {
    writer.begin({ file: { path: `data/${rel}`, size: bytes.length, mtimeMs: MTIME, mode: 0o640 } });
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

async function restore(src: string, dest: string, threads?: TreeThreads): Promise<void> {
  const tree = storedTreeAt(src);
  await mkdir(dest, { mode: 0o700 });
  await copyChunkTree(tree, await readStoredManifest(tree), 'data', dest, 'main', threads);
}

const obj = (length: number): StoredObject => ({ file: 'x', length });

test('jobsOfFile: a large file is cut into ranges at their offsets, a small file is one job', () => {
  const finish = { mode: 0o600, mtimeMs: 0 };
  const big = jobsOfFile({ target: 'big', objects: [obj(4), obj(4), obj(4), obj(4), obj(2)], finish }, 3, 2);
  assert.equal(
    big.jobs.map((j) => [j.target, j.position, j.objects.length, j.split]),
    [
      ['big', 0, 2, 3],
      ['big', 8, 2, 3],
      ['big', 16, 1, 3],
    ],
  );
  assert.is(big.ranges, 3);
  const small = jobsOfFile({ target: 'a', objects: [obj(3), obj(1)], finish }, 4, 2);
  assert.equal(
    small.jobs.map((j) => [j.target, j.position, j.objects.length, j.split]),
    [['a', 0, 2, undefined]],
  );
  assert.is(small.ranges, 0);
});

test('copyChunkTree: files of many ranges, written by both threads, rebuilt with every byte, mode and mtime', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-ctree-'));
  try {
    const src = path.join(root, 'backup');
    // 1000 chunks of 4 bytes, each different: a range at a wrong offset shows.
    const big = Buffer.from(Array.from({ length: 1000 }, (_, i) => i.toString(16).padStart(4, '0')).join(''));
    const edge = Buffer.from('x'.repeat(CHUNK * RANGE_OBJECTS + 1)); // one byte past one range
    const files = { big, edge, small: Buffer.from('abc'), empty: Buffer.alloc(0), 'sub/x': Buffer.from('hello world!!') };
    await storedBackup(src, files);
    const dest = path.join(root, 'restored');
    // Two threads, started ahead and used twice (the data directory, then a tablespace).
    const threads = TreeThreads.start(2);
    try {
      await restore(src, dest, threads);
      await restore(src, path.join(root, 'again'), threads);
    } finally {
      await threads.close();
    }
    for (const d of [dest, path.join(root, 'again')]) {
      for (const [rel, bytes] of Object.entries(files)) {
        const file = path.join(d, rel);
        assert.ok((await readFile(file)).equals(bytes), rel);
        const st = await stat(file);
        assert.is(st.mode & 0o777, 0o640, rel);
        assert.is(st.mtimeMs, MTIME, rel);
      }
      assert.equal((await readdir(d)).sort(), ['big', 'edge', 'empty', 'small', 'sub']);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

for (const [what, at] of [
  ['a range of a large file', 'big.pgbk-chunks/00000031'],
  ['a small file', 'small'],
] as const) {
  test(`copyChunkTree: a chunk of ${what} with other content (a valid frame) fails with a CATALOG error naming it`, async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-ctree-'));
    try {
      const src = path.join(root, 'backup');
      await storedBackup(src, { big: Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(10)), small: Buffer.from('abcd') });
      // Same length, valid zstd: only the sha256 can tell.
      await writeFile(path.join(src, 'data', at), (await zstdCodec()).compress(Buffer.from('ABCD'), 1));
      try {
        await restore(src, path.join(root, 'restored'));
        assert.unreachable('restored a damaged backup');
      } catch (err) {
        assert.instance(err, PgbkError);
        assert.is((err as PgbkError).code, 'CATALOG');
        assert.match((err as PgbkError).message, `${at} does not match its recorded sha256`);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test('copyChunkTree: a chunk that is not a zstd frame fails the restore naming it', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-ctree-'));
  try {
    const src = path.join(root, 'backup');
    await storedBackup(src, { big: Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(10)) });
    await writeFile(path.join(src, 'data', 'big.pgbk-chunks', '00000007'), Buffer.from('not a zstd frame'));
    try {
      await restore(src, path.join(root, 'restored'));
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

test('copyChunkTree: the main thread takes jobs once it has walked the tree (alone here: no thread started)', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-ctree-'));
  try {
    const src = path.join(root, 'backup');
    const big = Buffer.from(Array.from({ length: 200 }, (_, i) => i.toString(16).padStart(4, '0')).join(''));
    const files = { big, small: Buffer.from('abc'), 'sub/x': Buffer.from('hello world!!') };
    await storedBackup(src, files);
    const threads = TreeThreads.start(0);
    try {
      await restore(src, path.join(root, 'restored'), threads);
      // A damaged chunk found by the main thread fails the restore naming it, like a thread's.
      await writeFile(path.join(src, 'data', 'big.pgbk-chunks', '00000011'), (await zstdCodec()).compress(Buffer.from('ABCD'), 1));
      try {
        await restore(src, path.join(root, 'damaged'), threads);
        assert.unreachable('restored a damaged backup');
      } catch (err) {
        assert.instance(err, PgbkError);
        assert.is((err as PgbkError).code, 'CATALOG');
        assert.match((err as PgbkError).message, 'big.pgbk-chunks/00000011 does not match its recorded sha256');
      }
    } finally {
      await threads.close();
    }
    for (const [rel, bytes] of Object.entries(files)) {
      const file = path.join(root, 'restored', rel);
      assert.ok((await readFile(file)).equals(bytes), rel);
      assert.is((await stat(file)).mtimeMs, MTIME, rel);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('copyChunkTree: threads that are gone fail the restore at once instead of waiting for their report', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-ctree-'));
  try {
    const src = path.join(root, 'backup');
    await storedBackup(src, { small: Buffer.from('abc') });
    const threads = TreeThreads.start(2);
    await threads.close();
    try {
      await restore(src, path.join(root, 'restored'), threads);
      assert.unreachable('restored without threads');
    } catch (err) {
      assert.match((err as Error).message, /restore thread exited/);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
