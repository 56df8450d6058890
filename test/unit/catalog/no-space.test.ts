/**
 * Disk-full handling on a real full filesystem: a 256 KiB tmpfs (we run as root; the mount is
 * removed in test.after and at process exit). Without root the tests cannot mount and say so.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkWriter } from '../../../src/backup/ssh/chunk-writer.js';
import { writeFileAtomic } from '../../../src/lib/atomic.js';
import { noSpaceError } from '../../../src/catalog/no-space.js';
import { appendChecksum, readChecksums } from '../../../src/catalog/posix/checksums.js';
import { PgbkError } from '../../../src/errors.js';
import { freeSpace, humanBytes, isNoSpaceError } from '../../../src/lib/free-space.js';
import { makeTempDir, rejection } from './tmp-catalog.js';

const tmp = makeTempDir('pgbk-nospace-');
const mnt = path.join(tmp.dir, 'mnt');
let mounted = false;

function umount(): void {
  if (!mounted) return;
  if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
  mounted = false;
}
process.on('exit', umount);

test.before(() => {
  mkdirSync(mnt);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`these tests need root to mount a tmpfs: ${r.stderr}`);
  mounted = true;
});
test.after(() => {
  umount();
  tmp.cleanup();
});

const BIG = Buffer.alloc(512 * 1024, 7);

test('humanBytes and freeSpace of the tmpfs (and of a path below it that does not exist yet)', async () => {
  assert.is(humanBytes(0), '0 bytes');
  assert.is(humanBytes(1023), '1023 bytes');
  assert.is(humanBytes(2 * 1024 * 1024), '2.0 MiB');
  const fs = await freeSpace(path.join(mnt, 'not', 'yet'));
  assert.is(fs?.total, 256 * 1024);
  assert.is(fs?.dir, mnt);
});

test('an atomic write that fills the disk leaves no temp file, and its error names the file', async () => {
  const dir = path.join(mnt, 'atomic');
  await mkdir(dir);
  const file = path.join(dir, 'big.json');
  const err = (await rejection(writeFileAtomic(file, BIG))) as NodeJS.ErrnoException;
  assert.ok(isNoSpaceError(err), String(err));
  assert.is(err.path, file);
  assert.equal(readdirSync(dir), []);
  const e = await noSpaceError(err, { server: 'main', file, what: 'test file' });
  assert.instance(e, PgbkError);
  assert.is(e.server, 'main');
  assert.is(e.path, file);
  assert.match(
    e.message,
    new RegExp(
      `^no space left on device writing ${file} \\(test file\\): [\\d.]+ (bytes|KiB) free \\(\\d+ bytes\\) of 256\\.0 KiB on the filesystem holding ${dir}$`,
    ),
  );
});

test('ssh backup chunk writer: a full disk fails with the chunk file named', async () => {
  const dir = path.join(mnt, 'chunks');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  const chunk = 128 * 1024;
  const writer = new ChunkWriter(dir, undefined, chunk);
  writer.begin({ file: { path: 'data/big', size: 4 * chunk, mtimeMs: 1, mode: 0o600 } });
  const err = (await rejection(
    (async () => {
      for (let i = 0; i < 4; i++) await writer.data(String(i).repeat(64), BIG.subarray(0, chunk));
      await writer.end();
      await writer.flush();
    })(),
  )) as NodeJS.ErrnoException;
  assert.ok(isNoSpaceError(err), String(err));
  assert.match(err.path ?? '', new RegExp(`^${dir}/data/big\\.pgbk-chunks/0000000\\d$`));
});

test('a SHA256SUMS line cut short by a full disk does not swallow the next line', async () => {
  const dir = path.join(tmp.dir, 'sums');
  await mkdir(dir);
  const a = 'a'.repeat(64);
  writeFileSync(path.join(dir, 'SHA256SUMS'), `${a}  one\n${'b'.repeat(30)}`); // the cut-short append
  await appendChecksum(dir, 'two', 'c'.repeat(64));
  assert.equal(
    [...(await readChecksums(dir)).entries()],
    [
      ['one', a],
      ['two', 'c'.repeat(64)],
    ],
  );
});

test.run();
