/**
 * A cluster whose pg_wal is a symbolic link to another directory (`initdb --waldir`, the usual way
 * to put WAL on its own disk). The `ssh` method copies the data directory file by file, and would
 * store pg_wal as that link: a restore would then point the restored cluster at the source's own
 * WAL directory — on the same host, the live server's WAL, which the restored server would recycle
 * and overwrite. Like pg_basebackup, a backup must store pg_wal as an empty directory (with
 * archive_status), so the restore gets a pg_wal of its own; the source's WAL directory is untouched.
 */
import { execFile } from 'node:child_process';
import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chownToPostgres, startClusterOn, tempDir, waitForQuery } from '../../support/postgres.js';
import { makeSshWorld, switchAndArchive, type SshWorld } from './world.js';

const execFileP = promisify(execFile);
let w: SshWorld | undefined;
let walRoot = '';

test.after(async () => {
  await w?.destroy();
  if (walRoot !== '') await rm(walRoot, { recursive: true, force: true });
});

test('ssh backup of a cluster with pg_wal linked elsewhere: restored with a pg_wal of its own, the source WAL untouched', async () => {
  walRoot = await tempDir('pgbk-waldir-');
  await chownToPostgres(walRoot);
  const waldir = path.join(walRoot, 'wal');
  const world = await makeSshWorld({ cluster: { initdbArgs: [`--waldir=${waldir}`] } });
  w = world;
  assert.ok((await lstat(path.join(world.cluster.pgdata, 'pg_wal'))).isSymbolicLink(), 'test setup: pg_wal is a link');
  await world.writeConfig({ withConnection: true });
  await world.cluster.sql('CREATE TABLE t (x int)');
  await world.cluster.sql('INSERT INTO t VALUES (1), (2)');
  const b = await world.pgbk(['backup', 'main']);
  assert.is(b.code, 0, b.stdout + b.stderr);
  await switchAndArchive(world);
  assert.is((await world.pgbk(['apply'])).code, 0);
  await execFileP('chmod', ['-R', 'o+rX', world.catalog]);
  const sourceWal = (await readdir(waldir)).sort();

  const parent = await tempDir('pgbk-waldir-restore-');
  await chownToPostgres(parent);
  const dir = path.join(parent, 'data');
  try {
    const r = await world.pgbk(['restore', 'main', '--target-dir', dir]);
    assert.is(r.code, 0, r.stderr);
    const restoredWal = await lstat(path.join(dir, 'pg_wal'));
    assert.ok(restoredWal.isDirectory() && !restoredWal.isSymbolicLink(), 'the restored pg_wal is a directory of its own');
    assert.ok((await lstat(path.join(dir, 'pg_wal', 'archive_status'))).isDirectory());
    const c = await startClusterOn(dir, { conf: { archive_mode: 'off' } });
    try {
      await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 90_000);
      assert.is(await c.sql('SELECT count(*) FROM t'), '2');
    } finally {
      await c.destroy();
    }
    // The restored server wrote its own timeline into its own pg_wal, none into the source's.
    assert.equal(
      (await readdir(waldir)).filter((n) => !sourceWal.includes(n)).filter((n) => n.startsWith('00000002')),
      [],
    );
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

test.run();
