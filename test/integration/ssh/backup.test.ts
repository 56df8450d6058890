// test-lane: light — ssh full/incremental/fallback backups; the 2.5 s sleep is a lower bound (files age), the mid-copy kill only gets easier on a busy machine, waits are 60 s
/**
 * Backup method `ssh` end to end against a real sshd and PostgreSQL 15: full and block-level
 * incremental backups through the delta agent (`pgbk backup-agent` on the database host) in
 * SSH-only mode, rebuilt from their chunks and started with rows checked (after the older backup
 * was deleted: each backup is self-contained); the tar fallback when the agent is missing; verify
 * and restore catching a damaged chunk; the `connection` variant; psql errors surfaced; an SSH
 * connection dropped mid-copy leaves a FAILED backup with no data.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { chownToPostgres, startClusterOn, tempDir } from '../../support/postgres.js';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type BackupRecord, type CopiedBackup, isCopied } from '../../../src/model/types.js';
import { descendants, makeSshWorld, restoreByCopy, switchAndArchive, waitPromoted, type SshWorld } from './world.js';

/**
 * Rows of the `big` table (~1.6 kB each, ~64 MB): every later backup and restore carries it, so it
 * is most of this file's time. The dropped-connection test needs the copy still running when it
 * sees the first 50 files of base/ stored; files go in path order, and big (base/5/16xxx) comes
 * after base/1's ~300 files, so the kill lands long before the copy could end. 160 MB bought no
 * more margin than that.
 */
const BIG_ROWS = 40_000;

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
  return (JSON.parse(r.stdout) as { backup: BackupRecord }).backup;
}

async function backup(w: SshWorld, expectFallback = false, progress = false): Promise<CopiedBackup> {
  const r = await w.pgbk(['backup', 'main'], progress ? { env: { PGBK_PROGRESS: '1' } } : {});
  assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  // Progress (bytes stored of the listed total) only when forced: stderr is a pipe here.
  if (progress) assert.match(r.stderr, /\r\x1b\[Kmain: ssh backup: \d+% [\d.]+ \w?i?B of [\d.]+ \w?i?B, \d+ files/, JSON.stringify(r.stderr.slice(0, 2000)));
  else assert.not.ok(r.stderr.includes('\r\x1b[K'), 'no progress without a terminal');
  // The delta agent ran on the database host, or (when told so) the tar fallback was logged once.
  assert.is((r.stderr.match(/falling back to a tar stream/g) ?? []).length, expectFallback ? 1 : 0, r.stderr);
  const rec = await show(w);
  if (!isCopied(rec)) throw new Error(`backup ${rec.id} is ${rec.status}`);
  return rec;
}

/** Inode of chunk `index` of a chunked file in a backup. */
async function chunkIno(w: SshWorld, id: string, rel: string, index: number): Promise<number> {
  return (await stat(path.join(w.catalog, 'main', 'backups', id, 'data', `${rel}.pgbk-chunks`, index.toString(16).padStart(8, '0')))).ino;
}

t('full then incremental backup in SSH-only mode; restore of the incremental after deleting the full', async (ctx) => {
  const w = ctx.w!;
  await w.cluster.sql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
  // ~7 MiB: stored as chunks; the incremental below changes a few of them only.
  await w.cluster.sql("CREATE TABLE wide AS SELECT g, repeat('w', 500) AS pad FROM generate_series(1, 13000) g");
  // Frozen now: neither the UPDATEs' scans (hint bits) nor a later autovacuum rewrite its pages.
  await w.cluster.sql('VACUUM FREEZE wide');
  await w.cluster.sql('CHECKPOINT');
  const wideRel = await w.cluster.sql("SELECT pg_relation_filepath('wide')");
  // Reuse needs a file's mtime safely (REUSE_MARGIN_MS) before the previous listing: let the
  // freshly initdb'd files age past it.
  await new Promise((r) => setTimeout(r, 2500));
  const full = await backup(w, false, true);
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
  await w.cluster.sql("UPDATE wide SET pad = repeat('u', 500) WHERE g <= 200; CHECKPOINT");
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
  // Block level: the updated table's untouched middle chunks are shared, its first (updated) one is new.
  assert.is(await chunkIno(w, incr.id, wideRel, 3), await chunkIno(w, full.id, wideRel, 3));
  assert.is.not(await chunkIno(w, incr.id, wideRel, 0), await chunkIno(w, full.id, wideRel, 0));
  assert.ok((incr.copiedBytes ?? 0) < (full.copiedBytes ?? 0) / 4, `incremental stored ${incr.copiedBytes} new bytes vs full ${full.copiedBytes}`);
  const verified = await w.pgbk(['verify', 'main', incr.id]);
  assert.is(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);

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
    assert.is(await restored.sql('SELECT count(*) FROM t WHERE v <> md5(id::text)'), '0');
    assert.is(await restored.sql("SELECT count(*) FILTER (WHERE pad = repeat('u', 500)) || '/' || count(*) FROM wide"), '200/13000');
  } finally {
    await restored.destroy();
  }
});

t("archive_command = 'false' on the database host: the ssh backup refuses before it copies or records anything", async (ctx) => {
  const w = ctx.w!;
  const backupsDir = path.join(w.catalog, 'main', 'backups');
  const before = await readdir(backupsDir);
  await w.cluster.sql("ALTER SYSTEM SET archive_command = 'false'");
  await w.cluster.sql('SELECT pg_reload_conf()');
  try {
    // Read over the same SQL session the copy uses (psql on the database host, SSH-only mode).
    const r = await w.pgbk(['backup', 'main']);
    assert.is.not(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /base backup refused: archive_command is 'false'/, r.stdout + r.stderr);
    assert.match(r.stderr, /hint: if this cluster now replaces the server/);
    assert.equal(await readdir(backupsDir), before, 'nothing was written into backups/');
  } finally {
    await w.cluster.sql('ALTER SYSTEM RESET archive_command');
    await w.cluster.sql('SELECT pg_reload_conf()');
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

t("psql errors are reported with PostgreSQL's message; the backup is not left STARTED", async (ctx) => {
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
  await w.cluster.sql(`CREATE TABLE big AS SELECT g, repeat('x', 1500) AS pad FROM generate_series(1, ${BIG_ROWS}) g`);
  // Frozen now, like wide: a later autovacuum would rewrite every page, and the tar fallback test
  // below expects big's chunks to be linked, not stored again.
  await w.cluster.sql('VACUUM FREEZE big');
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
  assert.match(rec.status === 'FAILED' ? rec.error : '', /interrupted|lost|closed|SSH/i);
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
    'restore',
    'main',
    'latest',
    '--target-dir',
    target,
    '--remote',
    `postgres@127.0.0.1:${w.sshd.port}`,
    '--identity',
    w.sshd.identityFile,
    '--known-hosts',
    w.sshd.knownHosts,
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /onto ssh postgres@\[127\.0\.0\.1\]/);
  const restored = await startClusterOn(target, { conf: { archive_mode: 'off' } });
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql('SELECT count(*) FROM after_last'), '321');
    assert.is(await restored.sql('SELECT count(*) FROM t'), '6500');
    assert.is(await restored.sql('SELECT count(*) FROM big'), String(BIG_ROWS));
  } finally {
    await restored.destroy();
    await rm(dest, { recursive: true, force: true });
  }
  // A non-empty target is refused before anything is written.
  const again = await w.pgbk([
    'restore',
    'main',
    'latest',
    '--target-dir',
    w.cluster.pgdata,
    '--remote',
    `postgres@127.0.0.1:${w.sshd.port}`,
    '--identity',
    w.sshd.identityFile,
    '--known-hosts',
    w.sshd.knownHosts,
  ]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /not an empty directory/);
});

t('agent command missing: tar fallback, logged once; still block-level incremental and restorable', async (ctx) => {
  const w = ctx.w!;
  const before = await show(w);
  const wideRel = await w.cluster.sql("SELECT pg_relation_filepath('wide')");
  await w.writeConfig({ agent: '/nonexistent/pgbk' });
  try {
    await w.cluster.sql("UPDATE wide SET pad = repeat('v', 500) WHERE g BETWEEN 201 AND 400");
    await w.cluster.sql('CHECKPOINT');
    const b = await backup(w, true);
    assert.is(b.status, 'DONE');
    assert.is(b.reusedFrom, before.id);
    assert.ok((b.copiedBytes ?? 0) < (b.sizes?.data ?? 0) / 4, `fallback stored ${b.copiedBytes} new bytes of ${b.sizes?.data}`);
    assert.is(await chunkIno(w, b.id, wideRel, 3), await chunkIno(w, before.id, wideRel, 3));
    await switchAndArchive(w);
    const applied = await w.pgbk(['apply']);
    assert.is(applied.code, 0, applied.stderr);
    const restored = await restoreByCopy(w, b.id);
    try {
      await waitPromoted(restored);
      assert.is(await restored.sql("SELECT count(*) FILTER (WHERE pad = repeat('v', 500)) || '/' || count(*) FROM wide"), '200/13000');
      assert.is(await restored.sql('SELECT count(*) FROM big'), String(BIG_ROWS));
    } finally {
      await restored.destroy();
    }
  } finally {
    await w.writeConfig();
  }
});

/** Rewrite a stored backup as pgbk stored it before chunking: plain files, files.json formatVersion 1. */
async function downgradeToV1(w: SshWorld, id: string): Promise<void> {
  const dir = path.join(w.catalog, 'main', 'backups', id);
  const m = JSON.parse(await readFile(path.join(dir, 'files.json'), 'utf8')) as { files: [string, number, number, number, string[]][] } & Record<
    string,
    unknown
  >;
  for (const [p, , , , hashes] of m.files) {
    if (hashes.length < 2) continue;
    const chunkDir = path.join(dir, `${p}.pgbk-chunks`);
    const parts = await Promise.all(hashes.map((_, i) => readFile(path.join(chunkDir, i.toString(16).padStart(8, '0')))));
    await writeFile(path.join(dir, p), Buffer.concat(parts), { mode: 0o600 });
    await rm(chunkDir, { recursive: true });
  }
  const v1 = {
    formatVersion: 1,
    listedAtMs: m['listedAtMs'],
    pgdata: m['pgdata'],
    tablespaces: m['tablespaces'],
    files: m.files.map(([p, size, mtime]) => [p, size, mtime]),
  };
  const text = `${JSON.stringify(v1)}\n`;
  await writeFile(path.join(dir, 'files.json'), text);
  const recFile = path.join(dir, 'backup.json');
  const rec = JSON.parse(await readFile(recFile, 'utf8')) as CopiedBackup;
  await writeFile(recFile, JSON.stringify({ ...rec, checksums: { ...rec.checksums, 'files.json': createHash('sha256').update(text).digest('hex') } }));
}

t('a backup stored before chunking (files.json v1) verifies, and the next backup builds on it', async (ctx) => {
  const w = ctx.w!;
  const old = await show(w);
  await downgradeToV1(w, old.id);
  const v = await w.pgbk(['verify', 'main', old.id]);
  assert.is(v.code, 0, `${v.stdout}\n${v.stderr}`);
  assert.match(v.stdout, /formatVersion 1/);
  await w.cluster.sql("UPDATE wide SET pad = repeat('y', 500) WHERE g BETWEEN 401 AND 600");
  const b = await backup(w);
  assert.is(b.status, 'DONE');
  assert.is(b.sizes?.data, (b.copiedBytes ?? 0) + (b.reusedBytes ?? 0));
  const wideRel = await w.cluster.sql("SELECT pg_relation_filepath('wide')");
  // Re-chunked from the old plain copy on the backup host: the next backup links its chunks again.
  assert.ok(existsSync(path.join(w.catalog, 'main', 'backups', b.id, 'data', `${wideRel}.pgbk-chunks`, '00000003')));
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);
  await rm(path.join(w.catalog, 'main', 'backups', old.id), { recursive: true, force: true });
  const restored = await restoreByCopy(w, b.id);
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql("SELECT count(*) FILTER (WHERE pad = repeat('y', 500)) || '/' || count(*) FROM wide"), '200/13000');
    assert.is(await restored.sql('SELECT count(*) FROM t'), '6500');
  } finally {
    await restored.destroy();
  }
});

t('verify and restore detect a damaged chunk', async (ctx) => {
  const w = ctx.w!;
  const b = await show(w);
  const wideRel = await w.cluster.sql("SELECT pg_relation_filepath('wide')");
  const chunk = path.join(w.catalog, 'main', 'backups', b.id, 'data', `${wideRel}.pgbk-chunks`, '00000002');
  const ok = await w.pgbk(['verify', 'main', b.id]);
  assert.is(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
  const original = await readFile(chunk);
  const damaged = Buffer.from(original);
  damaged[5000] = damaged[5000]! ^ 0xff;
  await writeFile(chunk, damaged);
  try {
    const bad = await w.pgbk(['verify', 'main', b.id]);
    assert.is(bad.code, 1, bad.stdout);
    assert.match(`${bad.stdout}${bad.stderr}`, /00000002 does not match its recorded sha256/);
    const target = path.join(await tempDir('pgbk-sshbad-'), 'data');
    const r = await w.pgbk(['restore', 'main', b.id, '--target-dir', target]);
    assert.is(r.code, 1, r.stdout);
    assert.match(r.stderr, /00000002 does not match its recorded sha256/);
    await rm(path.dirname(target), { recursive: true, force: true });
  } finally {
    await writeFile(chunk, original); // hard-linked into other backups: put it back
  }
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
