/**
 * `pgbk restore --remote` onto a "database host" reached over a real sshd (the same machine, as
 * the postgres user), with WAL fetched on demand over SSH by `pgbk wal-fetch --from` and its
 * prefetching worker: PostgreSQL 15 started on the restored directory replays to the target and
 * holds exactly the right rows, the tablespace included. The source cluster archives with
 * `pgbk wal-push --to ssh://…`, so a restore without --wal-from derives the fetch settings from
 * that archive_command. A corrupt archived segment stops recovery (never a promotion); bad input
 * is refused before anything is written.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../../src/catalog/backups.js';
import { walPath } from '../../../../src/catalog/layout.js';
import { listArchivedWal } from '../../../../src/catalog/wal-archive.js';
import { optionsFrom, workerKey } from '../../../../src/wal-push/target.js';
import { CLI, runPgbk, type RunResult } from '../../../support/pgbk.js';
import { chownToPostgres, isAlive, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../../support/postgres.js';
import { startSshd, type TestSshd } from '../../../support/sshd.js';

// The remote side's runtime directory: TMPDIR is passed by the test sshd (test/support/sshd.ts).
const POSTGRES_RUNTIME = path.join(os.tmpdir(), `pgbk-${execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()}`);
const NODE_CLI = `${process.execPath} ${CLI}`;

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

interface Step {
  readonly step: number;
  readonly lsn: string;
}

interface Ctx {
  sshd?: TestSshd;
  root?: string;
  catalog?: string;
  config?: string;
  source?: TestCluster;
  pushArgs?: string[];
  tsOid?: string;
  steps: Step[];
  /** Restore target roots to remove; their pgdata paths identify fetch workers to stop. */
  dests: string[];
}

const t = suite<Ctx>('restore --remote with WAL fetched over SSH', { steps: [], dests: [] });

/** PIDs of fetch workers that served a data directory under `dest` (from their logs). */
async function fetchWorkers(dest: string): Promise<{ pids: number[]; log: string }> {
  const names = await readdir(POSTGRES_RUNTIME).catch(() => [] as string[]);
  let log = '';
  const pids = new Set<number>();
  for (const n of names.filter((x) => x.startsWith('walfetch-') && x.endsWith('.log'))) {
    const text = await readFile(path.join(POSTGRES_RUNTIME, n), 'utf8').catch(() => '');
    if (!text.includes(dest)) continue;
    log += text;
    for (const m of text.matchAll(/wal-fetch-worker\[(\d+)\]/g)) pids.add(Number(m[1]));
  }
  return { pids: [...pids], log };
}

function kill(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // exited already
    }
  }
}

async function waitArchived(ctx: Ctx, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await listArchivedWal(ctx.catalog!, 'main')).segments.includes(name)) {
    if (Date.now() > deadline) throw new Error(`${name} was not archived\n${ctx.source!.logTail(20)}`);
    await sleep(100);
  }
}

async function switchAndArchive(ctx: Ctx): Promise<void> {
  const name = await ctx.source!.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
  await ctx.source!.sql('SELECT pg_switch_wal()');
  await waitArchived(ctx, name);
}

async function writeStep(c: TestCluster, step: number): Promise<Step> {
  await c.sql(`INSERT INTO t VALUES (${step})`);
  return { step, lsn: await c.sql('SELECT pg_current_wal_insert_lsn()') };
}

function restore(ctx: Ctx, args: readonly string[]): Promise<RunResult> {
  return runPgbk([
    '--config',
    ctx.config!,
    'restore',
    'main',
    '--remote',
    `postgres@127.0.0.1:${ctx.sshd!.port}`,
    '--identity',
    ctx.sshd!.identityFile,
    '--known-hosts',
    ctx.sshd!.knownHosts,
    ...args,
  ]);
}

async function newDest(ctx: Ctx): Promise<string> {
  const dest = await tempDir('pgbk-rr-');
  await chownToPostgres(dest);
  ctx.dests.push(dest);
  return dest;
}

t.before(async (ctx) => {
  try {
    ctx.sshd = await startSshd();
    ctx.root = await tempDir('pgbk-rremote-');
    ctx.catalog = path.join(ctx.root, 'catalog');
    await mkdir(ctx.catalog);
    ctx.config = path.join(ctx.root, 'pgbk.yaml');
    ctx.pushArgs = [
      '--to',
      `ssh://root@127.0.0.1:${ctx.sshd.port}${ctx.catalog}`,
      '--identity',
      ctx.sshd.postgresIdentityFile,
      '--known-hosts',
      ctx.sshd.knownHosts,
      '--remote-pgbk',
      NODE_CLI,
      '--compression',
      'zstd',
    ];
    const archiveCommand = [process.execPath, CLI, 'wal-push', ...ctx.pushArgs, 'main'].map(shQuote).join(' ') + ' %p';
    const tsDir = path.join(ctx.root, 'ts-source');
    await mkdir(tsDir);
    await chownToPostgres(tsDir);
    const source = await startCluster({ archiveCommand, conf: { max_wal_size: '64MB' } });
    ctx.source = source;
    await writeFile(
      ctx.config,
      [`catalog: ${ctx.catalog}`, 'servers:', '  main:', `    connection: "${source.conninfo}"`, '    retention: { redundancy: 5 }', ''].join('\n'),
    );
    await source.sql(`CREATE TABLESPACE ts LOCATION '${tsDir}'`);
    ctx.tsOid = await source.sql(`SELECT oid FROM pg_tablespace WHERE spcname = 'ts'`);
    await source.sql('CREATE TABLE tt (x int) TABLESPACE ts; INSERT INTO tt SELECT generate_series(1, 500)');
    await source.sql('CREATE TABLE t (step int PRIMARY KEY); INSERT INTO t VALUES (0)');
    await switchAndArchive(ctx);
    const b = await runPgbk(['--config', ctx.config, 'backup', 'main']);
    assert.is(b.code, 0, `pgbk backup: ${b.stderr}`);
    const done = (await readBackups(ctx.catalog, 'main')).filter((x) => x.status === 'DONE');
    assert.is(done.length, 1, b.stderr);
    ctx.steps.push(await writeStep(source, 1));
    // Segments between step 1 and step 2, so that replay to step 2 runs through the spool.
    // One psql for all eight: each INSERT writes WAL, so each pg_switch_wal() closes a segment.
    await source.sql('CREATE TABLE filler (x int)');
    await source.sql('DO $$ BEGIN FOR i IN 1..8 LOOP INSERT INTO filler SELECT generate_series(1, 1000); PERFORM pg_switch_wal(); END LOOP; END $$');
    ctx.steps.push(await writeStep(source, 2));
    await source.sql('SELECT pg_switch_wal()');
    ctx.steps.push(await writeStep(source, 3));
    await switchAndArchive(ctx);
  } catch (err) {
    process.stderr.write(`setup failed: ${(err as Error).stack ?? String(err)}\n`);
    throw err;
  }
});

t.after(async (ctx) => {
  await ctx.source?.destroy();
  for (const d of ctx.dests) {
    kill((await fetchWorkers(d)).pids);
    await rm(d, { recursive: true, force: true });
  }
  if (ctx.pushArgs !== undefined && ctx.source !== undefined) {
    const v = ctx.pushArgs;
    const key = workerKey(optionsFrom({ to: v[1], identity: v[3], 'known-hosts': v[5], 'remote-pgbk': v[7], compression: v[9] }, 'main'), ctx.source.pgdata);
    const log = await readFile(path.join(POSTGRES_RUNTIME, `walpush-${key}.log`), 'utf8').catch(() => '');
    kill([...new Set([...log.matchAll(/wal-push-worker\[(\d+)\]/g)].map((m) => Number(m[1])))]);
  }
  await ctx.sshd?.stop();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t('--wal-from: PITR to an LSN replays WAL fetched and prefetched over SSH; tablespace mapped; worker exits with recovery', async (ctx) => {
  const dest = await newDest(ctx);
  const data = path.join(dest, 'data');
  const tsTarget = path.join(dest, 'ts');
  const from = `ssh://root@127.0.0.1:${ctx.sshd!.port}${ctx.catalog}`;
  const r = await restore(ctx, [
    '--target-dir',
    data,
    '--target-lsn',
    ctx.steps[1]!.lsn,
    '--target-action',
    'promote',
    '--tablespace-dir',
    `${ctx.tsOid}=${tsTarget}`,
    '--wal-from',
    from,
    '--wal-identity',
    ctx.sshd!.postgresIdentityFile,
    '--wal-known-hosts',
    ctx.sshd!.knownHosts,
    '--wal-remote-pgbk',
    NODE_CLI,
    '--db-pgbk',
    NODE_CLI,
    '--json',
  ]);
  assert.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as {
    wal: { mode: string; derivedFrom: string; from: string };
    tablespaces: { oid: string; location: string }[];
    targetTimeline: number;
    archiving: string;
  };
  assert.equal(summary.wal.mode, 'fetch');
  // What was written into the copy is said, as by a local restore (the default: refuse).
  assert.equal([summary.targetTimeline, summary.archiving], [1, 'refuse']);
  assert.is(summary.wal.derivedFrom, 'flag');
  assert.equal(summary.tablespaces, [{ oid: ctx.tsOid!, location: tsTarget }]);
  assert.not.ok(existsSync(path.join(data, 'pgbk_wal')), 'WAL was copied up front');
  assert.is((await readFile(path.join(data, 'tablespace_map'), 'utf8')).trim(), `${ctx.tsOid} ${tsTarget}`);
  const c = await startClusterOn(data, { conf: { archive_mode: 'off' } });
  try {
    await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 60_000);
    assert.is(await c.sql("SELECT string_agg(step::text, ',' ORDER BY step) FROM t"), '0,1,2');
    assert.is(await c.sql('SELECT count(*) FROM tt'), '500');
    assert.is(await c.sql(`SELECT pg_tablespace_location(${ctx.tsOid})`), tsTarget);
    const log = c.logTail(400);
    // Restored to %p, or placed in pg_wal by the worker and read in place (the fast path logs those).
    const replayed = [
      ...new Set(
        [...log.matchAll(/restored log file "([0-9A-F]{24})" from archive|pgbk wal-fetch: ([0-9A-F]{24}) prefetched into pg_wal/g)].map((m) => m[1] ?? m[2]),
      ),
    ];
    const placed = [...log.matchAll(/pgbk wal-fetch: [0-9A-F]{24} prefetched into pg_wal/g)].length;
    const byNode = [...log.matchAll(/pgbk wal-fetch: ([0-9A-F]{24}) served over SSH/g)].length;
    assert.ok(replayed.length >= 9, `only ${replayed.length} segments replayed:\n${log}`);
    assert.ok(byNode < replayed.length - 4, `${byNode} of ${replayed.length} segments needed a Node start: the spool did not serve them\n${log}`);
    // recovery_end_command removed the spool: the worker sees it and exits by itself.
    assert.not.ok(existsSync(path.join(data, '.pgbk-spool')));
    const deadline = Date.now() + 10_000;
    let w = await fetchWorkers(data);
    while (w.pids.some(isAlive) && Date.now() < deadline) {
      await sleep(100);
      w = await fetchWorkers(data);
    }
    assert.ok(w.pids.length === 1, `expected one fetch worker (one SSH connection), saw ${w.pids.length}\n${w.log}`);
    assert.not.ok(w.pids.some(isAlive), `fetch worker still running\n${w.log}`);
    const spooled = Number(/(\d+) prefetched \(into pg_wal or the spool\)/.exec(w.log)?.[1] ?? '0');
    assert.ok(spooled >= replayed.length - byNode, `worker log: ${w.log}`);
    assert.ok(placed * 2 >= replayed.length, `${placed} of ${replayed.length} segments were read in place from pg_wal\n${log}`);
    console.log(`    node-served: ${[...log.matchAll(/pgbk wal-fetch: ([0-9A-F]{24}) served over SSH/g)].map((m) => m[1]).join(' ')}`);
    console.log(`    ${replayed.length} segments replayed: ${byNode} through Node, ${spooled} prefetched over one SSH connection`);
  } finally {
    await c.destroy();
  }
});

t("no --wal-from: the fetch settings come from the backup's wal-push --to archive_command", async (ctx) => {
  const dest = await newDest(ctx);
  const data = path.join(dest, 'data');
  const r = await restore(ctx, ['--target-dir', data, '--tablespace-dir', path.join(dest, 'tsroot'), '--no-archive']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /settings derived from the backup's archive_command/);
  assert.match(r.stdout, /WAL: {4}fetched on demand over SSH from ssh:\/\/root@127\.0\.0\.1:\d+\/.* \(derived from the backup's archive_command\)/);
  assert.match(r.stdout, new RegExp(`tablespace ${ctx.tsOid} → ${path.join(dest, 'tsroot', ctx.tsOid!)}`));
  assert.match(r.stdout, /^ {2}target: .*, timeline 1, then (pause|promote|shutdown)$/m);
  assert.match(r.stdout, /^ {2}archive: archive_mode = off \(--no-archive\): the copy archives nothing$/m);
  assert.match(r.stdout, /^Next: .*its port and socket directory are the backup's, so if the source runs on that host, add -o "-p FREE_PORT -k /m);
  const auto = await readFile(path.join(data, 'postgresql.auto.conf'), 'utf8');
  assert.match(auto, /restore_command = '.*wal-fetch --from ssh:\/\/root@127\.0\.0\.1/);
  const c = await startClusterOn(data);
  try {
    await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 60_000);
    assert.is(await c.sql("SELECT string_agg(step::text, ',' ORDER BY step) FROM t"), '0,1,2,3');
    assert.is(await c.sql('SELECT count(*) FROM tt'), '500');
    assert.is(await c.sql('SHOW archive_mode'), 'off');
  } finally {
    await c.destroy();
  }
});

t('bad input is refused before anything is written on the database host', async (ctx) => {
  const dest = await newDest(ctx);
  const data = path.join(dest, 'data');
  const badUrl = await restore(ctx, ['--target-dir', data, '--tablespace-dir', path.join(dest, 'ts'), '--wal-from', 'root@127.0.0.1:/catalog']);
  assert.is(badUrl.code, 1);
  assert.match(badUrl.stderr, /--wal-from root@127\.0\.0\.1:\/catalog: expected ssh:\/\/USER@HOST\[:PORT\]\/PATH\/TO\/CATALOG/);
  // Without a mapping the tablespace goes to its recorded location: the live source's, not empty.
  const busy = await restore(ctx, ['--target-dir', data]);
  assert.is(busy.code, 1);
  assert.match(busy.stderr, /tablespace \d+ location .*ts-source exists and is not an empty directory/);
  const noKey = await restore(ctx, [
    '--target-dir',
    data,
    '--tablespace-dir',
    path.join(dest, 'ts'),
    '--wal-from',
    `ssh://root@127.0.0.1:1${ctx.catalog}`,
    '--wal-identity',
    '/nonexistent/key',
  ]);
  assert.is(noKey.code, 1);
  assert.match(noKey.stderr, /--wal-identity \/nonexistent\/key: no such file on ssh postgres@/);
  assert.equal(await readdir(dest), [], 'something was written');
});

t('a corrupt archived segment stops recovery: PostgreSQL never promotes', async (ctx) => {
  const dest = await newDest(ctx);
  const data = path.join(dest, 'data');
  const archived = await listArchivedWal(ctx.catalog!, 'main');
  const backup = (await readBackups(ctx.catalog!, 'main')).find((b) => b.status === 'DONE')!;
  const later = archived.segments.filter((s) => s > backup.endWal!);
  const victim = later[3]!;
  const file = walPath(ctx.catalog!, 'main', victim, 'zstd');
  const good = await readFile(file);
  const r = await restore(ctx, [
    '--target-dir',
    data,
    '--tablespace-dir',
    path.join(dest, 'ts'),
    '--wal-from',
    `ssh://root@127.0.0.1:${ctx.sshd!.port}${ctx.catalog}`,
    '--wal-identity',
    ctx.sshd!.postgresIdentityFile,
    '--wal-known-hosts',
    ctx.sshd!.knownHosts,
    '--wal-remote-pgbk',
    NODE_CLI,
    '--db-pgbk',
    NODE_CLI,
  ]);
  assert.is(r.code, 0, r.stderr);
  const bad = Buffer.from(good);
  bad[Math.floor(bad.length / 2)]! ^= 0xff;
  await writeFile(file, bad);
  try {
    const c = await startClusterOn(data, { wait: false, conf: { archive_mode: 'off' } });
    try {
      const deadline = Date.now() + 60_000;
      while (isAlive(c.pid) && Date.now() < deadline) await sleep(100);
      const log = c.logTail(200);
      assert.not.ok(isAlive(c.pid), `PostgreSQL is still running:\n${log}`);
      assert.match(log, new RegExp(`WAL file ${victim} is corrupt`));
      assert.not.match(log, /selected new timeline ID|database system is ready to accept connections/);
      assert.ok(existsSync(path.join(data, 'recovery.signal')), 'recovery ended');
    } finally {
      await c.destroy();
    }
  } finally {
    await writeFile(file, good);
  }
});

t.run();
