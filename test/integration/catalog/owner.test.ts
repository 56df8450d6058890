// test-lane: light — file owners and modes in the catalog; only a 90 s recovery wait
/**
 * One OS user owns the catalog (src/catalog/owner.ts), proven with real processes: a catalog owned
 * by postgres (PostgreSQL archives into it through `pgbk wal-push`), pgbk started as root, as
 * postgres and as an unrelated user (nobody).
 *
 * - as root, apply/backup/restore leave only postgres-owned files, and PostgreSQL started on the
 *   restore replays WAL through restore_command (running as postgres) to the newest row;
 * - as nobody, every writing command is refused before anything is written;
 * - a backup directory only root can read (what `apply` as root used to leave) is reported by
 *   list/status/plan as postgres with its path and EACCES, and they exit 1;
 * - `user:` in the configuration decides who creates a catalog that does not exist yet.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, mkdir, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, runPgbk, snapshotTree, switchWal, type World } from '../../support/pgbk.js';
import { chownToPostgres, startClusterOn, tempDir, waitForQuery } from '../../support/postgres.js';
import { lookupUser } from '../../../src/lib/os-user.js';

const IS_ROOT = process.getuid?.() === 0;
let w: World | undefined;
let postgresUid = -1;
const W = (): World => {
  if (w === undefined) throw new Error('setup did not run');
  return w;
};

/** Every entry under dir whose owner is not `uid`, as "path (uid N)". */
async function foreignOwned(dir: string, uid: number): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    const st = await lstat(d);
    if (st.uid !== uid) out.push(`${d} (uid ${st.uid})`);
    if (!st.isDirectory()) return;
    for (const name of await readdir(d)) await walk(path.join(d, name));
  }
  await walk(dir);
  return out;
}

test.before(async () => {
  if (!IS_ROOT) return;
  try {
    postgresUid = (await lookupUser('postgres'))!.uid;
    w = await makeWorld({ archive: 'wal-push' });
    await chmod(w.configPath, 0o644);
  } catch (err) {
    process.stderr.write(`setup failed: ${(err as Error).stack ?? String(err)}\n`);
    throw err;
  }
});

test.after(async () => {
  await w?.destroy();
});

test('apply, backup and restore started as root leave only postgres-owned files; restore_command replays', async () => {
  if (!IS_ROOT) return;
  const world = W();
  await world.cluster.sql('CREATE TABLE t (n int)');
  await world.cluster.sql('INSERT INTO t VALUES (1)');
  await switchWal(world);
  const applied = await world.pgbk(['apply'], { asPostgres: false });
  assert.is(applied.code, 0, applied.stdout + applied.stderr);
  assert.match(applied.stdout, /main: base-backup .*: done/);
  const backup = await world.pgbk(['backup', 'main'], { asPostgres: false });
  assert.is(backup.code, 0, backup.stdout + backup.stderr);
  await world.cluster.sql('INSERT INTO t VALUES (2)');
  await switchWal(world);
  // Marks the backups DONE now that their WAL is archived.
  const finished = await world.pgbk(['apply'], { asPostgres: false });
  assert.is(finished.code, 0, finished.stdout + finished.stderr);
  assert.equal(await foreignOwned(world.catalog, postgresUid), [], 'apply/backup as root wrote files postgres does not own');

  const target = path.join(await tempDir('pgbk-owner-restore-'), 'data');
  const restored = await world.pgbk(['restore', 'main', 'latest', '--target-dir', target], { asPostgres: false });
  assert.is(restored.code, 0, restored.stderr);
  // The in-use mark (lock + backup.json) was written while restore ran as root.
  assert.equal(await foreignOwned(world.catalog, postgresUid), [], 'restore as root wrote catalog files postgres does not own');
  // Restored files belong to the user PostgreSQL runs as, whoever pgbk ran as.
  assert.equal(await foreignOwned(target, postgresUid), [], 'restored files not owned by postgres');
  const cluster = await startClusterOn(target, { conf: { archive_mode: 'off' } });
  try {
    await waitForQuery(cluster, 'SELECT pg_is_in_recovery()', 'f', 90_000);
    assert.is(await cluster.sql("SELECT string_agg(n::text, ',' ORDER BY n) FROM t"), '1,2', cluster.logTail(30));
    assert.match(cluster.logTail(200), /restored log file "[0-9A-F]{24}" from archive/);
  } finally {
    await cluster.destroy();
    await rm(path.dirname(target), { recursive: true, force: true });
  }
});

test('started as another unprivileged user, writing commands are refused and nothing is written', async () => {
  if (!IS_ROOT) return;
  const world = W();
  const seg = path.join(world.cluster.pgdata, 'pg_wal');
  const segment = (await readdir(seg)).find((n) => /^[0-9A-F]{24}$/.test(n))!;
  const before = await snapshotTree(world.catalog);
  for (const args of [['apply'], ['backup', 'main'], ['keep', 'main', 'latest'], ['wal-push', 'main', path.join(seg, segment)], ['daemon']]) {
    const r = await world.pgbk(args, { runAs: 'nobody' });
    assert.is(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${args[0]}: the catalog ${world.catalog} belongs to postgres \\(uid ${postgresUid}\\), but pgbk is running as nobody`));
    assert.match(r.stderr, /hint: run it as postgres/);
  }
  assert.equal(await snapshotTree(world.catalog), before, 'nothing in the catalog changed');
});

test('a backup directory only root can read is reported by list, status and plan as postgres, with exit 1', async () => {
  if (!IS_ROOT) return;
  const world = W();
  const backups = path.join(world.catalog, 'main', 'backups');
  const good = (await readdir(backups)).filter((n) => /^\d{8}T\d{6}Z$/.test(n)).sort();
  assert.ok(good.length > 0);
  // What `pgbk backup` started as root used to leave: a root-owned 0750 directory, 0640 record.
  const id = '20200101T000000Z';
  const dir = path.join(backups, id);
  const record = JSON.parse(await readFile(path.join(backups, good[0]!, 'backup.json'), 'utf8')) as Record<string, unknown>;
  await mkdir(dir, { mode: 0o750 });
  await writeFile(path.join(dir, 'backup.json'), JSON.stringify({ ...record, id }), { mode: 0o640 });
  try {
    const list = await world.pgbk(['list', '--json']);
    assert.is(list.code, 1, list.stderr);
    assert.match(list.stderr, new RegExp(`backup ${id} is not listed: cannot read ${dir}/backup\\.json: EACCES; ${dir} belongs to root`));
    const listed = (JSON.parse(list.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id);
    assert.equal(listed, good, 'the readable backups are still listed');
    for (const args of [['status'], ['plan'], ['show', 'main', 'latest']]) {
      const r = await world.pgbk(args);
      assert.is(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`cannot read 1 backup: ${id} \\(cannot read ${dir}/backup\\.json: EACCES`), args.join(' '));
    }
    // Started as root, list runs as postgres too: the same report, not a root's-eye view.
    const asRoot = await world.pgbk(['list'], { asPostgres: false });
    assert.is(asRoot.code, 1, asRoot.stderr);
    assert.match(asRoot.stderr, new RegExp(`backup ${id} is not listed`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const clean = await world.pgbk(['list']);
  assert.is(clean.code, 0, clean.stderr);
});

test('a catalog that does not exist yet is created by user: from the configuration, else by the owner of its parent', async () => {
  if (!IS_ROOT) return;
  const world = W();
  const parent = await tempDir('pgbk-owner-new-');
  await chmod(parent, 0o1777); // root's, writable by everyone (like /tmp)
  const history = path.join(parent, 'src', '00000002.history');
  await mkdir(path.dirname(history));
  await writeFile(history, '1\t0/3000000\tno recovery target specified\n');
  await chownToPostgres(path.dirname(history));
  const conninfo = (await readFile(world.configPath, 'utf8')).match(/connection: "([^"]*)"/)![1]!;
  try {
    for (const [name, user, expectedUid, owner] of [
      ['with-user', 'user: postgres\n', postgresUid, 'postgres'],
      ['without-user', '', 0, 'root'],
    ] as const) {
      const catalog = path.join(parent, name);
      const config = path.join(parent, `${name}.yaml`);
      await writeFile(config, `catalog: ${catalog}\n${user}servers:\n  main:\n    connection: "${conninfo}"\n    retention: { redundancy: 1 }\n`, {
        mode: 0o644,
      });
      const r = await runPgbk(['--config', config, 'wal-push', 'main', history]);
      assert.is(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`the catalog ${catalog} does not exist yet: it will belong to ${owner} \\(uid ${expectedUid}\\)`));
      assert.equal(await foreignOwned(catalog, expectedUid), [], `${name}: every file owned by ${owner}`);
      assert.ok((await readdir(path.join(catalog, 'main', 'wal'))).includes('00000002.history'), `${name}: archived`);
    }
    // user: naming someone else than the existing catalog's owner: refused, nothing written.
    const config = path.join(parent, 'mismatch.yaml');
    await writeFile(config, `catalog: ${world.catalog}\nuser: nobody\nservers:\n  main:\n    connection: "${conninfo}"\n    retention: { redundancy: 1 }\n`, {
      mode: 0o644,
    });
    const before = await snapshotTree(world.catalog);
    const r = await runPgbk(['--config', config, 'apply']);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /belongs to postgres \(uid \d+\), but the configuration says user: nobody/);
    assert.equal(await snapshotTree(world.catalog), before);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

test('wal-receive (the catalog end of wal-push over SSH) logged in as root writes as the owner; as nobody it is refused', async () => {
  if (!IS_ROOT) return;
  const parent = await tempDir('pgbk-owner-recv-');
  const catalog = path.join(parent, 'catalog');
  await mkdir(catalog);
  await chownToPostgres(catalog);
  try {
    const refused = await runPgbk(['wal-receive', '--catalog', catalog, 'main'], { runAs: 'nobody' });
    assert.is(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /wal-receive: the catalog .* belongs to postgres \(uid \d+\), but pgbk is running as nobody/);
    assert.equal(await readdir(catalog), [], 'nothing written');
    // No frames on stdin: it makes the server's directories and ends.
    const r = await runPgbk(['wal-receive', '--catalog', catalog, 'main']);
    assert.is(r.code, 0, r.stderr);
    assert.ok((await readdir(path.join(catalog, 'main'))).includes('wal'));
    assert.equal(await foreignOwned(catalog, postgresUid), []);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

test.run();
