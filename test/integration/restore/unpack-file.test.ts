// test-lane: light — tee, zstd, tar and openssl on small files in a temp dir; no server, no time bound
/**
 * unpack-file.ts: a compressed stored file of a local catalog unpacked with Node out of the data
 * path (tee → zstd → tar, and tee → openssl for the digest). It must give what unpack.ts's Node
 * pass gives (the tree, the file's sha256, its size, the member count), refuse a digest that does
 * not match, name the stage that failed (a damaged or cut file, a target tar cannot write, a
 * missing file), and stop every program on abort.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { localHost } from '../../../src/restore/host.js';
import { parseReport, unpackFile } from '../../../src/restore/unpack-file.js';
import { unpackInto } from '../../../src/restore/unpack.js';
import { tempDir } from '../../support/postgres.js';
import { makeTar, treeOf } from './stored-layout-contract.js';

let tmp = '';
const ZSTD = ['zstd', '-d', '-c', '-q'];
const files: Record<string, Buffer> = {
  PG_VERSION: Buffer.from('15\n'),
  'base/1/1': randomBytes(300_000),
  'base/1/2': Buffer.alloc(2_000_000, 7),
  'global/pg_control': randomBytes(8192),
};
let stored = '';
let sha = '';

test.before(async () => {
  tmp = await tempDir('pgbk-unpack-file-');
  const bytes = await makeTar(tmp, files, true);
  stored = path.join(tmp, 'base.tar.zst');
  await writeFile(stored, bytes);
  sha = createHash('sha256').update(bytes).digest('hex');
});

test.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const fresh = (name: string): Promise<string> => mkdtemp(path.join(tmp, `${name}-`));

test('the same tree, digest, size and member count as the Node pass; progress ends at the file size', async () => {
  const a = await fresh('file');
  const seen: number[] = [];
  const r = await unpackFile({
    host: localHost(),
    dir: a,
    sourceFile: stored,
    decompress: ZSTD,
    what: stored,
    expectedSha256: sha,
    onProgress: (b) => seen.push(b),
  });
  const b = await fresh('node');
  const { createReadStream } = await import('node:fs');
  const n = await unpackInto({ host: localHost(), dir: b, source: createReadStream(stored), decompress: ZSTD, what: stored, expectedSha256: sha });
  assert.equal(await treeOf(a), files);
  assert.equal(await treeOf(b), files);
  assert.is(r.sha256, sha);
  assert.is(r.sha256, n.sha256);
  assert.is(r.storedBytes, n.storedBytes);
  assert.is(r.files, n.files);
  assert.is(seen[seen.length - 1], n.storedBytes);
});

test('a digest that does not match is refused after tar finished', async () => {
  const dir = await fresh('mismatch');
  const wrong = '0'.repeat(64);
  try {
    await unpackFile({ host: localHost(), dir, sourceFile: stored, decompress: ZSTD, what: stored, expectedSha256: wrong });
    assert.unreachable('accepted a wrong digest');
  } catch (err) {
    assert.match((err as Error).message, new RegExp(`does not match its recorded sha256 \\(recorded ${wrong}, read ${sha}\\)`));
  }
});

test('a cut file fails naming the decompressor and the damage; a missing file and an unwritable target are named', async () => {
  const cut = path.join(tmp, 'cut.tar.zst');
  const { copyFile } = await import('node:fs/promises');
  await copyFile(stored, cut);
  await truncate(cut, 20_000);
  try {
    await unpackFile({ host: localHost(), dir: await fresh('cut'), sourceFile: cut, decompress: ZSTD, what: cut, expectedSha256: sha });
    assert.unreachable('unpacked a cut file');
  } catch (err) {
    assert.match((err as Error).message, /zstd could not decompress \S+cut\.tar\.zst/);
  }
  try {
    await unpackFile({ host: localHost(), dir: await fresh('missing'), sourceFile: path.join(tmp, 'nope.tar.zst'), decompress: ZSTD, what: 'nope.tar.zst' });
    assert.unreachable('unpacked a missing file');
  } catch (err) {
    assert.match((err as Error).message, /cannot read nope\.tar\.zst: ENOENT/);
  }
  // A target tar cannot write into (not as root: root writes anywhere).
  if (process.getuid?.() !== 0) {
    const locked = await fresh('locked');
    await chmod(locked, 0o500);
    try {
      await unpackFile({ host: localHost(), dir: locked, sourceFile: stored, decompress: ZSTD, what: stored, expectedSha256: sha });
      assert.unreachable('wrote into a read-only directory');
    } catch (err) {
      assert.match((err as Error).message, /tar could not extract/);
    }
  } else {
    const notDir = path.join(tmp, 'a-file');
    await writeFile(notDir, 'x');
    try {
      await unpackFile({ host: localHost(), dir: notDir, sourceFile: stored, decompress: ZSTD, what: stored, expectedSha256: sha });
      assert.unreachable('extracted into a file');
    } catch (err) {
      assert.match((err as Error).message, /tar could not extract/);
    }
  }
});

test('abort stops the programs and says so', async () => {
  const big = path.join(tmp, 'big.tar.zst');
  const bigFiles: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) bigFiles[`base/1/${i}`] = randomBytes(1_000_000);
  await writeFile(big, await makeTar(tmp, bigFiles, true));
  const ac = new AbortController();
  const dir = await fresh('abort');
  setTimeout(() => ac.abort(), 30);
  try {
    await unpackFile({ host: localHost(), dir, sourceFile: big, decompress: ZSTD, what: big, signal: ac.signal });
    assert.unreachable('not aborted');
  } catch (err) {
    assert.match((err as Error).message, /restore aborted while unpacking/);
  }
  assert.ok((await readdir(dir, { recursive: true })).length < 41, 'stopped before the end');
  await mkdir(path.join(tmp, 'after'), { recursive: true });
});

test('the report on fd 3: the digest line and each stage status', () => {
  const r = parseReport(`${'a'.repeat(64)} *stdin\ntee 0\ndec 141\ntar 2\nsha 0\n`);
  assert.is(r.sha256, 'a'.repeat(64));
  assert.equal(
    [...r.status.entries()],
    [
      ['tee', 0],
      ['dec', 141],
      ['tar', 2],
      ['sha', 0],
    ],
  );
});

test.run();
