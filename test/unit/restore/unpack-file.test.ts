/**
 * A local catalog's compressed tar unpacked with the decompressor reading the file itself
 * (src/restore/unpack-file.ts), its sha256 taken just behind it (hash-behind.ts). Real zstd, sh,
 * perl and GNU tar.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PgbkError } from '../../../src/errors.js';
import { hashBehindReader, sharedOffset } from '../../../src/restore/hash-behind.js';
import { localHost } from '../../../src/restore/host.js';
import { unpackLocalFile } from '../../../src/restore/unpack-file.js';

let dir: string;
let stored: string;
let storedSha: string;
const ZSTD = ['zstd', '-d', '-c', '-q'];

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-unpack-file-'));
  const src = path.join(dir, 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'hello'), 'hi\n');
  await writeFile(path.join(src, 'big'), randomBytes(3 << 20));
  stored = path.join(dir, 'base.tar.zst');
  const r = spawnSync('sh', ['-c', `tar -c -C "${src}" hello big | zstd -q -1 -o "${stored}"`]);
  assert.is(r.status, 0, r.stderr.toString());
  storedSha = createHash('sha256')
    .update(await readFile(stored))
    .digest('hex');
});

test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function target(name: string): Promise<string> {
  const t = path.join(dir, name);
  await mkdir(t);
  return t;
}

test('the decompressor reads the stored file as its stdin; the files, their count and the sha256 come out as with a pipe', async () => {
  const out = await target('out');
  const seen = path.join(dir, 'stdin-was');
  // zstd, after noting what its stdin is.
  const decompress = ['sh', '-c', `readlink /proc/self/fd/0 > "${seen}"; exec zstd -d -c -q`];
  const r = await unpackLocalFile({ host: localHost(), dir: out, file: stored, decompress, what: stored, expectedSha256: storedSha });
  assert.is((await readFile(seen, 'utf8')).trim(), stored);
  assert.is(await readFile(path.join(out, 'hello'), 'utf8'), 'hi\n');
  assert.is((await readFile(path.join(out, 'big'))).length, 3 << 20);
  assert.is(r.files, 2);
  assert.is(r.sha256, storedSha);
  assert.is(r.storedBytes, (await readFile(stored)).length);
});

test('a stored file whose sha256 differs from the recorded one fails the unpack, naming it', async () => {
  const out = await target('out-sha');
  try {
    await unpackLocalFile({ host: localHost(), dir: out, file: stored, decompress: ZSTD, what: stored, expectedSha256: '0'.repeat(64) });
    assert.unreachable('a wrong sha256 was accepted');
  } catch (err) {
    assert.ok(err instanceof PgbkError && /does not match its recorded sha256/.test(err.message) && err.message.includes(stored), String(err));
  }
});

test("a truncated stored file: the decompressor's failure names the file as damaged", async () => {
  const cut = path.join(dir, 'cut.tar.zst');
  await writeFile(cut, await readFile(stored));
  await truncate(cut, 1000);
  const out = await target('out-cut');
  try {
    await unpackLocalFile({ host: localHost(), dir: out, file: cut, decompress: ZSTD, what: cut, expectedSha256: storedSha });
    assert.unreachable('a truncated file was unpacked');
  } catch (err) {
    assert.ok(err instanceof PgbkError && /zstd could not decompress/.test(err.message) && err.message.includes(cut), String(err));
  }
});

test('a missing stored file: a CATALOG error naming it, nothing started', async () => {
  const out = await target('out-missing');
  try {
    await unpackLocalFile({ host: localHost(), dir: out, file: path.join(dir, 'absent.tar.zst'), decompress: ZSTD, what: 'absent.tar.zst' });
    assert.unreachable();
  } catch (err) {
    assert.ok(err instanceof PgbkError && err.code === 'CATALOG' && /cannot read absent\.tar\.zst/.test(err.message), String(err));
  }
});

test('the hasher never reads past the reader while it runs, and hashes the whole file once it has ended', async () => {
  const fh = await open(stored, 'r');
  try {
    // A reader that takes the first 64 KiB, pauses, then reads the rest: the hasher must wait.
    const child = spawn('sh', ['-c', 'dd bs=65536 count=1 status=none >/dev/null; sleep 0.3; cat >/dev/null'], { stdio: [fh.fd, 'ignore', 'inherit'] });
    const ended = new Promise<void>((resolve) => child.once('close', () => resolve()));
    let alive = true;
    void ended.then(() => {
      alive = false;
    });
    let ahead = 0;
    let maxWhileAlive = 0;
    const r = await hashBehindReader(fh, ended, (bytes) => {
      if (!alive) return;
      maxWhileAlive = Math.max(maxWhileAlive, bytes);
      const offset = sharedOffset(fh.fd) ?? 0;
      if (bytes > offset) ahead++;
    });
    assert.is(ahead, 0, 'hashed bytes the reader had not read');
    assert.ok(maxWhileAlive < (await readFile(stored)).length, `the hasher waited for the reader (${maxWhileAlive} bytes while it paused)`);
    assert.is(r.sha256, storedSha);
  } finally {
    await fh.close();
  }
});

test.run();
