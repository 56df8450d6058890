/**
 * The local parts of an object-storage catalog (incoming/, streaming/) live in its spool (s3.spool);
 * without one there are none, and nothing is ever created under a path made from the URL.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listIncoming } from '../../../src/catalog/incoming.js';
import { ensureServerDirs, incomingDir } from '../../../src/catalog/layout.js';
import { localRootOf, registerSpool } from '../../../src/catalog/local-spool.js';
import { locate } from '../../../src/catalog/open.js';
import { streamingDir } from '../../../src/catalog/streaming.js';

test('a local catalog is its own local root; an s3:// one has its spool, or none', () => {
  assert.is(localRootOf('/var/lib/pgbk'), '/var/lib/pgbk');
  registerSpool('s3://with-spool/p/', '/var/spool/pgbk');
  registerSpool('s3://no-spool/p/', undefined);
  assert.is(localRootOf('s3://with-spool/p/'), '/var/spool/pgbk');
  assert.is(incomingDir('s3://with-spool/p/', 'main'), '/var/spool/pgbk/main/incoming');
  assert.is(streamingDir('s3://with-spool/p/', 'main'), '/var/spool/pgbk/main/streaming');
  assert.is(incomingDir('/var/lib/pgbk', 'main'), '/var/lib/pgbk/main/incoming');
  assert.is(localRootOf('s3://no-spool/p/'), undefined);
  assert.throws(
    () => incomingDir('s3://no-spool/p/', 'main'),
    /catalog s3:\/\/no-spool\/p\/: incoming\/ needs a local spool directory, and none is configured/,
  );
  assert.throws(() => streamingDir('s3://no-spool/p/', 'main'), /streaming\/ \(wal: \{ method: stream \}\) needs a local spool directory/);
  assert.throws(() => incomingDir('s3://with-spool/p/', '../x'), /invalid server name/);
});

test('locate names a key of an s3:// catalog as a URL, not a folded path', () => {
  assert.is(locate('s3://b/pgbk/', 'main/errors/'), 's3://b/pgbk/main/errors');
  assert.is(locate('s3://b/pgbk', 'main/server.json'), 's3://b/pgbk/main/server.json');
  assert.is(locate('/var/lib/pgbk', 'main/errors/'), '/var/lib/pgbk/main/errors');
});

test("ensureServerDirs: only the spool's incoming/ for an s3:// catalog, nothing without a spool; listIncoming is then empty", async () => {
  const cwd = process.cwd();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-spool-'));
  try {
    process.chdir(dir);
    registerSpool('s3://no-spool2/p/', undefined);
    await ensureServerDirs('s3://no-spool2/p/', 'main');
    assert.equal(await readdir(dir), [], 'nothing created under the working directory');
    assert.equal(await listIncoming('s3://no-spool2/p/', 'main'), []);
    const spool = path.join(dir, 'spool');
    registerSpool('s3://spool2/p/', spool);
    await ensureServerDirs('s3://spool2/p/', 'main');
    assert.equal(await readdir(path.join(spool, 'main')), ['incoming']);
    assert.is((await stat(path.join(spool, 'main', 'incoming'))).mode & 0o777, 0o770);
    assert.equal(await readdir(dir), ['spool']);
  } finally {
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
