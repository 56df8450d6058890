/**
 * Backup method `ssh` end to end against a real sshd and PostgreSQL 15: full and incremental
 * (hard-linked) backups in SSH-only mode, restored by copying data/ and started with rows checked
 * (after the older backup was deleted: each backup is self-contained); the `connection` variant;
 * psql errors surfaced; an SSH connection dropped mid-copy leaves a FAILED backup with no data.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { chownToPostgres, startClusterOn, tempDir } from '../../support/postgres.js';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { BackupRecord } from '../../../src/plan/types.js';
import { descendants, makeSshWorld, restoreByCopy, switchAndArchive, waitPromoted, type SshWorld } from './world.js';

const t = suite<{ w?: SshWorld; ids: string[] }>('ssh backup method', { ids: [] });
t.before(async (ctx) => {
  ctx.w = await makeSshWorld();
});
t.after(async (ctx) => {
  await ctx.w?.destroy();
});

async function show(w: SshWorld, id = 'latest'): Promise<BackupRecord> {
  const r = await w.pgbk(['show', 'main', id, '--json']);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as BackupRecord;
}

async function backup(w: SshWorld): Promise<BackupRecord> {
  const r = await w.pgbk(['backup', 'main']);
  assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return show(w);
}

t('full then incremental backup in SSH-only mode; restore of the incremental after deleting the full', async (ctx) => {
  const w = ctx.w!;
  await w.cluster.sql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
  // Reuse needs a file's mtime safely (REUSE_MARGIN_MS) before the previous listing: let the
  // freshly initdb'd files age past it.
  await new Promise((r) => setTimeout(r, 2500));
  const full = await backup(w);
  assert.is(full.status, 'DONE');
  assert.is(full.method, 'ssh');
  assert.ok((full.copiedBytes ?? 0) > 1_000_000, `copied ${full.copiedBytes}`);
  assert.is(full.reusedBytes, 0);
  const fullDir = path.join(w.catalog, 'main', 'backups', full.id);
  assert.ok(existsSync(path.join(fullDir, 'data', 'backup_label')));
  assert.ok(existsSync(path.join(fullDir, 'data', 'pg_wal', 'archive_status')));
  assert.equal(await readdir(path.join(fullDir, 'data', 'pg_wal')), ['archive_status']);
  assert.not.ok(existsSync(path.join(fullDir, 'data', 'postmaster.pid')));

  await w.cluster.sql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(5001, 6000) g; CREATE TABLE t2 AS SELECT 1 AS x');
  const incr = await backup(w);
  assert.is(incr.status, 'DONE');
  assert.is(incr.reusedFrom, full.id);
  assert.ok((incr.reusedBytes ?? 0) > 0, 'nothing reused');
  assert.ok((incr.copiedBytes ?? 0) < (full.copiedBytes ?? 0), `incremental copied ${incr.copiedBytes} vs full ${full.copiedBytes}`);
  assert.is((incr.copiedBytes ?? 0) + (incr.reusedBytes ?? 0), incr.sizes?.data);
  // A reused file is the same inode in both backups (hard link).
  const incrDir = path.join(w.catalog, 'main', 'backups', incr.id);
  const pgVersion = path.join('data', 'PG_VERSION');
  assert.is((await stat(path.join(incrDir, pgVersion))).ino, (await stat(path.join(fullDir, pgVersion))).ino);

  const text = await w.pgbk(['show', 'main', incr.id]);
  assert.match(text.stdout, /Method:\s+ssh/);
  assert.match(text.stdout, new RegExp(`Copied:\\s+.* copied, .* reused \\(hard links\\) from ${full.id}`));

  await w.cluster.sql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(6001, 6500) g');
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.ok(applied.code === 0, applied.stderr);
  ctx.ids.push(full.id, incr.id);

  // Self-contained: the newer backup survives deletion of the one it reused files from.
  await rm(fullDir, { recursive: true, force: true });
  const restored = await restoreByCopy(w, incr.id);
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql('SELECT count(*) FROM t'), '6500');
    assert.is(await restored.sql('SELECT x FROM t2'), '1');
    assert.is(await restored.sql("SELECT count(*) FROM t WHERE v <> md5(id::text)"), '0');
  } finally {
    await restored.destroy();
  }
});

t('with `connection`: start/stop through a libpq session, same result', async (ctx) => {
  const w = ctx.w!;
  await w.writeConfig({ withConnection: true });
  const b = await backup(w);
  assert.is(b.status, 'DONE');
  assert.is(b.method, 'ssh');
  await w.writeConfig();
});

t('psql errors are reported with PostgreSQL\'s message; the backup is not left STARTED', async (ctx) => {
  const w = ctx.w!;
  await w.writeConfig({ psqlConnection: `host=${w.cluster.socketDir} port=${w.cluster.port} user=postgres dbname=no_such_db` });
  const r = await w.pgbk(['backup', 'main']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /database "no_such_db" does not exist/);
  await w.writeConfig();
  const list = await w.pgbk(['list', 'main', '--json']);
  assert.not.match(list.stdout, /STARTED/);
});

t('SSH connection dropped mid-copy: FAILED with the reason, no data left, next backup succeeds', async (ctx) => {
  const w = ctx.w!;
  // Big enough that the copy takes a while on loopback.
  await w.cluster.sql("CREATE TABLE big AS SELECT g, repeat('x', 1500) AS pad FROM generate_series(1, 250000) g");
  const backupsDir = path.join(w.catalog, 'main', 'backups');
  const before = new Set(await readdir(backupsDir));
  let killed = 0;
  const run = w.pgbk(['backup', 'main']);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const fresh = (await readdir(backupsDir)).filter((n) => !before.has(n) && !n.startsWith('.'));
    const id = fresh[0];
    if (id !== undefined && existsSync(path.join(backupsDir, id, 'data', 'base'))) {
      const base = path.join(backupsDir, id, 'data', 'base');
      const dbs = await readdir(base).catch(() => [] as string[]);
      const files = (await Promise.all(dbs.map((d) => readdir(path.join(base, d)).catch(() => [] as string[])))).flat();
      if (files.length > 50) {
        for (const pid of await descendants(w.sshd.pid)) {
          try {
            process.kill(pid, 'SIGKILL');
            killed++;
          } catch {
            // already gone
          }
        }
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const r = await run;
  assert.ok(killed > 0, 'never saw the copy in progress');
  assert.is(r.code, 1, r.stdout);
  const failed = (await readdir(backupsDir)).filter((n) => !before.has(n) && !n.startsWith('.'));
  assert.is(failed.length, 1);
  const rec = await show(w, failed[0]);
  assert.is(rec.status, 'FAILED');
  assert.match(rec.error ?? '', /interrupted|lost|closed|SSH/i);
  assert.not.ok(existsSync(path.join(backupsDir, failed[0]!, 'data')), 'partial data left visible');

  const again = await backup(w);
  assert.is(again.status, 'DONE');
  assert.ok(existsSync(path.join(backupsDir, again.id, 'data', 'backup_label')));
});

t('restore --remote onto the database host over SSH (WAL prefetched), started, rows checked', async (ctx) => {
  const w = ctx.w!;
  await w.cluster.sql('CREATE TABLE after_last (x int); INSERT INTO after_last SELECT generate_series(1, 321)');
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);
  const dest = await tempDir('pgbk-remote-');
  await chownToPostgres(dest);
  const target = path.join(dest, 'data');
  const r = await w.pgbk([
    'restore', 'main', 'latest', '--target-dir', target,
    '--remote', `postgres@127.0.0.1:${w.sshd.port}`, '--identity', w.sshd.identityFile, '--known-hosts', w.sshd.knownHosts,
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /onto ssh postgres@\[127\.0\.0\.1\]/);
  const restored = await startClusterOn(target, { conf: { archive_mode: 'off' } });
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql('SELECT count(*) FROM after_last'), '321');
    assert.is(await restored.sql('SELECT count(*) FROM t'), '6500');
    assert.is(await restored.sql('SELECT count(*) FROM big'), '250000');
  } finally {
    await restored.destroy();
    await rm(dest, { recursive: true, force: true });
  }
  // A non-empty target is refused before anything is written.
  const again = await w.pgbk(['restore', 'main', 'latest', '--target-dir', w.cluster.pgdata, '--remote', `postgres@127.0.0.1:${w.sshd.port}`, '--identity', w.sshd.identityFile, '--known-hosts', w.sshd.knownHosts]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /not an empty directory/);
});

t('pgbk restore of an ssh backup with a tablespace: started, rows checked', async (ctx) => {
  const w = ctx.w!;
  const tsDir = path.join(w.root, 'ts1');
  await mkdir(tsDir);
  await chownToPostgres(tsDir);
  await w.cluster.sql(`CREATE TABLESPACE ts1 LOCATION '${tsDir}'`);
  await w.cluster.sql('CREATE TABLE in_ts (id int) TABLESPACE ts1; INSERT INTO in_ts SELECT generate_series(1, 700)');
  const b = await backup(w);
  assert.is(b.status, 'DONE');
  assert.ok(existsSync(path.join(w.catalog, 'main', 'backups', b.id, 'data', 'tablespace_map')));
  await w.cluster.sql('INSERT INTO in_ts SELECT generate_series(701, 900)');
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);
  // restore_command runs `pgbk wal-fetch` as postgres: it must read the catalog and the config.
  await chownToPostgres(w.catalog);
  await chmod(w.configPath, 0o644);
  const target = path.join(await tempDir('pgbk-sshrest-'), 'data');
  const r = await w.pgbk(['restore', 'main', 'latest', '--target-dir', target]);
  assert.is(r.code, 0, r.stderr);
  const restored = await startClusterOn(target, { conf: { archive_mode: 'off' } });
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql('SELECT count(*) FROM in_ts'), '900');
    assert.is(await restored.sql('SELECT count(*) FROM t'), '6500');
    assert.is(await restored.sql("SELECT spcname FROM pg_tablespace WHERE spcname = 'ts1'"), 'ts1');
  } finally {
    await restored.destroy();
    await rm(path.dirname(target), { recursive: true, force: true });
    await rm(`${target}_tablespaces`, { recursive: true, force: true });
  }
});

t.run();
