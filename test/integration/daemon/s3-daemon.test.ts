/**
 * `pgbk daemon` on an s3:// catalog (radosgw, test/support/rgw.ts, once per process), one
 * PostgreSQL cluster for the file. archive_command copies into the catalog's local spool
 * (s3.spool, <spool>/main/incoming); the daemon archives from there into the bucket.
 *
 * 1. It takes the first backup into the bucket (DONE), archives the spool's WAL within seconds of
 *    its arrival (the periodic reconcile is an hour: only the watcher explains that), applies
 *    retention and WAL pruning once a newer backup is DONE, and stops on SIGTERM with exit 0.
 * 2. SIGTERM while a (throttled) backup is being uploaded, with a 1 s shutdown timeout: the pass is
 *    aborted — the backup FAILED, its multipart upload aborted, pg_basebackup gone, the S3 lease
 *    released — and the daemon exits 0 with nothing left running.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../src/catalog/backups.js';
import { readLock } from '../../../src/catalog/lock.js';
import { registerS3Catalog } from '../../../src/catalog/open.js';
import { openS3Repository, type S3Repository } from '../../../src/catalog/s3/driver.js';
import { listArchivedWal } from '../../../src/catalog/wal-archive.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';
import { runPgbk, type RunResult } from '../../support/pgbk.js';
import { chownToPostgres, isAlive, PG_BINDIR, startCluster, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';
import { rgw } from '../../support/rgw.js';
import { waitFor } from '../../support/wait.js';
import { startDaemon, type DaemonProcess } from './daemon-process.js';

interface Ctx {
  root?: string;
  spool?: string;
  incoming?: string;
  cluster?: TestCluster;
  daemon?: DaemonProcess;
}
const t = suite<Ctx>('pgbk daemon on an s3:// catalog (radosgw)', {});

interface S3World {
  readonly cfg: S3RepositoryConfig;
  readonly repo: S3Repository;
  readonly configPath: string;
  pgbk(args: readonly string[]): Promise<RunResult>;
}

async function s3World(ctx: Ctx, name: string, serverYaml: string): Promise<S3World> {
  const gw = await rgw();
  const cfg = await gw.bucket('pgbk/');
  registerS3Catalog({ ...cfg, spool: ctx.spool! });
  const repo = await openS3Repository(cfg);
  const configPath = path.join(ctx.root!, `${name}.yaml`);
  await writeFile(
    configPath,
    `catalog: ${cfg.url}\ns3: { endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true, spool: "${ctx.spool}" }\nservers:\n  main:\n    connection: "${ctx.cluster!.conninfo}"\n    ${serverYaml}\n`,
  );
  return { cfg, repo, configPath, pgbk: (args) => runPgbk(['--config', configPath, ...args], { cwd: ctx.root! }) };
}

function logOf(ctx: Ctx): () => string {
  return () => ctx.daemon?.log().slice(-4000) ?? '';
}

/** PIDs of every live descendant of `pid` (from /proc). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the command in parentheses, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

t.before(async (ctx) => {
  await rgw(); // first: it puts the credentials file into the environment PostgreSQL inherits
  ctx.root = await tempDir('pgbk-s3-daemon-');
  await chmod(ctx.root, 0o755);
  ctx.spool = path.join(ctx.root, 'spool');
  ctx.incoming = path.join(ctx.spool, 'main', 'incoming');
  await mkdir(ctx.incoming, { recursive: true, mode: 0o770 });
  await chownToPostgres(ctx.spool);
  const inc = ctx.incoming;
  ctx.cluster = await startCluster({ archiveCommand: `test ! -f ${inc}/%f && cp %p ${inc}/.%f.tmp && mv ${inc}/.%f.tmp ${inc}/%f` });
  await ctx.cluster.sql('CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000)');
});

/** Every daemon a test started: one that failed half-way is stopped here too, not only the last. */
const started: DaemonProcess[] = [];
function track(d: DaemonProcess): DaemonProcess {
  started.push(d);
  return d;
}

t.after(async (ctx) => {
  for (const d of [...started, ...(ctx.daemon === undefined ? [] : [ctx.daemon])]) {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  }
  await ctx.cluster?.destroy();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t('daemon on S3: first backup DONE in the bucket, spool WAL archived by the watcher, retention and WAL pruning, SIGTERM → exit 0', async (ctx) => {
  const w = await s3World(ctx, 'lifecycle', 'backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 1 }');
  const catalog = w.cfg.url;
  ctx.daemon = track(startDaemon(w.configPath, ['--reconcile-interval', '1h']));
  const context = logOf(ctx);
  const first = await waitFor('the first backup DONE in the bucket', async () => (await readBackups(catalog, 'main')).find((b) => b.status === 'DONE'), {
    timeoutMs: 90_000,
    stepMs: 250,
    context,
  });
  assert.ok((await w.repo.stat(`main/backups/${first.id}/base.tar.zst`)) !== undefined);

  // A segment arrives in the spool: archived into the bucket and gone from incoming/.
  await ctx.cluster!.sql('INSERT INTO t SELECT generate_series(1001, 1100)');
  const seg = await ctx.cluster!.sql('SELECT pg_walfile_name(pg_switch_wal())');
  await waitForQuery(ctx.cluster!, `SELECT last_archived_wal >= '${seg}' FROM pg_stat_archiver`, 't', 30_000);
  await waitFor(
    `${seg} archived into the bucket`,
    async () => ((await listArchivedWal(catalog, 'main')).segments.includes(seg) && !(await readdir(ctx.incoming!)).includes(seg) ? true : undefined),
    { timeoutMs: 20_000, stepMs: 100, context },
  );

  // A newer backup (taken by hand; the daemon finishes it): the first one is deleted by
  // retention (redundancy 1) and the WAL before the newer one pruned, all in the daemon's passes.
  const manual = await w.pgbk(['backup', 'main', '--lock-timeout', '2m']);
  assert.is(manual.code, 0, `${manual.stdout}${manual.stderr}`);
  const second = await waitFor(
    'retention: only the newer backup left, DONE',
    async () => {
      const bs = await readBackups(catalog, 'main');
      return bs.length === 1 && bs[0]!.id !== first.id && bs[0]!.status === 'DONE' ? bs[0] : undefined;
    },
    { timeoutMs: 60_000, stepMs: 250, context },
  );
  // The record goes first (deleteBackup: nothing can pick a half-deleted backup), the rest of its
  // objects right after, in the same pass: the pass may still be removing them when the listing
  // above already shows one backup.
  const leftOf = async (): Promise<string[]> => {
    const left: string[] = [];
    for await (const e of w.repo.listNames(`main/backups/${first.id}/`, { recursive: true })) left.push(e.key);
    return left;
  };
  await waitFor('every object of the deleted backup gone', async () => ((await leftOf()).length === 0 ? true : undefined), {
    timeoutMs: 20_000,
    stepMs: 100,
    context,
  });
  assert.equal(await leftOf(), [], 'every object of the deleted backup is gone');
  await waitFor(
    'WAL before the newer backup pruned',
    async () => ((await listArchivedWal(catalog, 'main')).segments.every((s) => s >= second.beginWal!) ? true : undefined),
    { timeoutMs: 20_000, stepMs: 200, context },
  );
  assert.ok(!(await listArchivedWal(catalog, 'main')).segments.includes(seg) || seg >= second.beginWal!);

  ctx.daemon.child.kill('SIGTERM');
  const exit = await ctx.daemon.exited;
  assert.is(exit.code, 0, ctx.daemon.log());
  assert.match(ctx.daemon.log(), /daemon stopped/);
  assert.is(await readLock(catalog, 'main'), undefined);
  w.repo.close();
});

t(
  'SIGTERM during an upload with --shutdown-timeout 1s: the pass is aborted — backup FAILED, multipart upload aborted, lease released, nothing left running',
  async (ctx) => {
    // pg_basebackup throttled to 1 MB/s: the first 16 MiB part is ready after ~16 s, the rest of
    // the ~23 MB cluster would take ~7 s more, so the backup is still uploading at the signal.
    const slowBin = path.join(ctx.root!, 'slowbin');
    await mkdir(slowBin);
    for (const name of await readdir(PG_BINDIR)) if (name !== 'pg_basebackup') await symlink(path.join(PG_BINDIR, name), path.join(slowBin, name));
    await writeFile(path.join(slowBin, 'pg_basebackup'), `#!/bin/sh\nexec ${path.join(PG_BINDIR, 'pg_basebackup')} "$@" --max-rate=1M\n`, { mode: 0o755 });
    const w = await s3World(ctx, 'abort', 'backup: { schedule: "0 3 * * *", compression: none }\n    retention: { redundancy: 1 }');
    const catalog = w.cfg.url;
    ctx.daemon = track(startDaemon(w.configPath, ['--reconcile-interval', '1h', '--shutdown-timeout', '1s'], { PGBK_PG_BINDIR: slowBin }));
    const daemon = ctx.daemon;
    await waitFor('a multipart upload in progress', async () => ((await w.repo.listUploads()).length > 0 ? true : undefined), {
      timeoutMs: 60_000,
      stepMs: 100,
      context: logOf(ctx),
    });
    const holder = await readLock(catalog, 'main');
    assert.is(holder?.pid, daemon.pid, 'the daemon holds the S3 lease for its pass');
    const children = descendants(daemon.pid);
    assert.ok(children.length > 0, 'pg_basebackup runs under the daemon');
    const t0 = Date.now();
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    assert.is(exit.code, 0, daemon.log());
    assert.ok(Date.now() - t0 < 25_000, `stopped in ${Date.now() - t0} ms`);
    assert.match(daemon.log(), /aborting the pass in progress/);
    assert.match(daemon.log(), /pass in progress was aborted/);
    const [b, ...more] = await readBackups(catalog, 'main');
    assert.ok(b !== undefined && more.length === 0);
    assert.is(b.status, 'FAILED', JSON.stringify(b));
    assert.equal(await w.repo.listUploads(), [], 'the multipart upload was aborted');
    assert.is(await readLock(catalog, 'main'), undefined, 'the lease was released');
    for (const pid of children) assert.not.ok(isAlive(pid), `pid ${pid} (started by the daemon) still runs`);
    w.repo.close();
  },
);

t.run();
