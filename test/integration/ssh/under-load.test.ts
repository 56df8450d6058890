/**
 * Backups taken while the database is being written, as they are in production: pgbench runs
 * during a full `ssh` backup and during the chunk-level incremental after it (whose chunks are
 * settled by their pages' LSNs or hashes while those pages change under it), and during a
 * `basebackup`-method backup. Once pgbench has stopped and its WAL is archived, each backup is
 * restored with `pgbk restore` to the end of the archive, and PostgreSQL must hold exactly the
 * source's data: the same md5 over every account balance, the same history, branches and tellers.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type BackupRecord, isCopied } from '../../../src/model/types.js';
import { restoreAndQuery } from '../../support/pgbk.js';
import { PG_BINDIR, tempDir } from '../../support/postgres.js';
import { makeSshWorld, switchAndArchive, type SshWorld } from './world.js';

const execFileP = promisify(execFile);
let w: SshWorld | undefined;
let pgbench: ChildProcess | undefined;

test.after(async () => {
  if (pgbench?.exitCode === null) pgbench.kill('SIGTERM');
  await w?.destroy();
});

/** Everything pgbench changes, as one line. */
const FINGERPRINT = `SELECT (SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts)
  || '|' || (SELECT count(*) || ':' || coalesce(sum(delta), 0) || ':' || coalesce(max(mtime)::text, '') FROM pgbench_history)
  || '|' || (SELECT string_agg(bid || ':' || bbalance, ',' ORDER BY bid) FROM pgbench_branches)
  || '|' || (SELECT string_agg(tid || ':' || tbalance, ',' ORDER BY tid) FROM pgbench_tellers)`;

function pgbenchArgs(world: SshWorld, extra: readonly string[]): string[] {
  return ['-h', world.cluster.socketDir, '-p', String(world.cluster.port), '-U', 'postgres', ...extra, 'postgres'];
}

async function backupNow(world: SshWorld): Promise<BackupRecord> {
  const r = await world.pgbk(['backup', 'main', '--json']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const show = await world.pgbk(['show', 'main', 'latest', '--json']);
  assert.is(show.code, 0, show.stderr);
  const rec = (JSON.parse(show.stdout) as { backup: BackupRecord }).backup;
  assert.is(rec.status, 'DONE', r.stdout + r.stderr);
  return rec;
}

async function restoredFingerprint(world: SshWorld, id: string): Promise<string> {
  return restoreAndQuery(world.pgbk, 'main', [id], FINGERPRINT, (r) => {
    assert.not.match(r.stderr, /restore_command/, 'no warning once postgres can read the catalog');
  });
}

test('ssh full, ssh incremental and basebackup taken under pgbench load restore to exactly the data', async () => {
  const world = await makeSshWorld();
  w = world;
  await world.writeConfig({ withConnection: true, backupCompression: 'zstd' });
  const bin = path.join(PG_BINDIR, 'pgbench');
  const init = spawn(bin, pgbenchArgs(world, ['-i', '-q', '-s', '3']), { stdio: 'ignore' });
  assert.is(await new Promise((resolve) => init.once('close', resolve)), 0, 'pgbench -i');

  // Load for the whole series of backups; stopped by its PID once they are done.
  pgbench = spawn(bin, pgbenchArgs(world, ['-n', '-c', '2', '-T', '600']), { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => pgbench!.once('close', resolve));
  const full = await backupNow(world);
  const incremental = await backupNow(world);
  const txBefore = await world.cluster.sql('SELECT count(*) FROM pgbench_history');
  // The same server, now backed up over the replication protocol.
  const config = await readFile(world.configPath, 'utf8');
  await writeFile(world.configPath, config.replace('backup: { method: ssh,', 'backup: { method: basebackup,'));
  const viaBasebackup = await backupNow(world);
  pgbench.kill('SIGINT');
  await exited;
  // The load really overlapped the backups: transactions went on after the first two.
  assert.ok(Number(await world.cluster.sql('SELECT count(*) FROM pgbench_history')) > Number(txBefore), 'pgbench wrote during the backups');
  assert.ok(isCopied(incremental) && incremental.method === 'ssh', 'the second backup is an ssh backup');

  const expected = await world.cluster.sql(FINGERPRINT);
  await switchAndArchive(world);
  const a = await world.pgbk(['apply']);
  assert.is(a.code, 0, a.stdout + a.stderr);

  // The catalog is root's and closed to others: a root restore warns that PostgreSQL's user could
  // not fetch WAL (its restore_command run once as that user), before anyone starts PostgreSQL.
  const parent = await tempDir('pgbk-underload-closed-');
  try {
    const closed = await world.pgbk(['restore', 'main', full.id, '--target-dir', path.join(parent, 'data')]);
    assert.is(closed.code, 0, closed.stderr);
    assert.match(
      closed.stderr,
      new RegExp(
        `warning: PostgreSQL's OS user postgres \\(owner of \\S+\\) cannot read ${world.catalog}/main/wal/\\S+, which its restore_command \\(pgbk wal-fetch\\) reads`,
      ),
    );
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
  await chmod(world.catalog, 0o755);
  await execFileP('chmod', ['-R', 'o+rX', world.catalog]);

  assert.is(await restoredFingerprint(world, full.id), expected, 'ssh full');
  assert.is(await restoredFingerprint(world, incremental.id), expected, 'ssh incremental');
  assert.is(viaBasebackup.method, 'basebackup');
  assert.is(await restoredFingerprint(world, viaBasebackup.id), expected, 'basebackup');
});

test.run();
