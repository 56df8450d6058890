/**
 * `pgbk restore --remote` from an s3:// catalog (radosgw, once per process) onto a "database host"
 * reached over a real sshd (this machine, as postgres). The source cluster archives straight into
 * the bucket with `pgbk --config F wal-push main %p`; the backup is streamed from the bucket (ranged
 * GETs, prefetched) through this process to the database host, and the restored cluster's
 * restore_command reads the bucket itself with that same pgbk and --config
 * (src/restore/remote-bucket-wal.ts): PostgreSQL starts on it with exactly the rows.
 */
import { spawnSync } from 'node:child_process';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../../src/catalog/backups.js';
import { registerS3Catalog } from '../../../../src/catalog/open.js';
import { CLI, runPgbk, type RunResult } from '../../../support/pgbk.js';
import { chownToPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../../support/postgres.js';
import { rgw } from '../../../support/rgw.js';
import { startSshd, type TestSshd } from '../../../support/sshd.js';

interface Ctx {
  sshd?: TestSshd;
  root?: string;
  config?: string;
  catalog?: string;
  source?: TestCluster;
  restored?: TestCluster;
}
const t = suite<Ctx>('restore --remote from an s3:// catalog', {});

const t0 = Date.now();
const note = (m: string): void => {
  process.stderr.write(`[s3-remote +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
};
/** A step that must end within ms: else the test fails with what was running (no silent hang). */
async function step<T>(name: string, ms: number, fn: (onSpawn: (pid: number) => void) => Promise<T>, diag?: () => string): Promise<T> {
  note(`${name}…`);
  let pid: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const ps = spawnSync('ps', ['-eo', 'pid,ppid,etimes,user,args', '--forest'], { encoding: 'utf8' }).stdout;
      const mine = ps.split('\n').filter((l) => /pgbk|postgres:|wal-|ssh/.test(l) && !/uvu-timed/.test(l));
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      reject(new Error(`${name}: not done after ${ms / 1000} s\n${mine.join('\n')}\n${diag?.() ?? ''}`));
    }, ms);
  });
  try {
    const r = await Promise.race([fn((p) => (pid = p)), limit]);
    note(`${name} done`);
    return r;
  } finally {
    clearTimeout(timer);
  }
}

function readLog(dir: string): string {
  return spawnSync('sh', ['-c', `tail -n 30 ${dir}/log/* 2>/dev/null`], { encoding: 'utf8' }).stdout;
}

const ok = (r: RunResult, what: string): RunResult => {
  assert.is(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
};

t.before(async (ctx) => {
  const gw = await rgw(); // first: it puts the credentials file into the environment PostgreSQL inherits
  ctx.sshd = await startSshd();
  ctx.root = await tempDir('pgbk-s3-remote-');
  await chmod(ctx.root, 0o755);
  const cfg = await gw.bucket('pgbk/');
  registerS3Catalog(cfg);
  ctx.catalog = cfg.url;
  ctx.config = path.join(ctx.root, 'pgbk.yaml');
  // No s3.spool: wal-push writes straight to the bucket and pgbk backup needs no local spool.
  ctx.source = await startCluster({ archiveCommand: `${process.execPath} ${CLI} --config ${ctx.config} wal-push main %p` });
  // Read by the archiver and, over SSH, by the restore (as postgres on the database host).
  await writeFile(
    ctx.config,
    `catalog: ${cfg.url}\ns3: { endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true }\nservers:\n  main:\n    connection: "${ctx.source.conninfo}"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 1 }\n`,
    { mode: 0o644 },
  );
  await ctx.source.sql('CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000)');
});

t.after(async (ctx) => {
  await step('stop restored', 30_000, async () => ctx.restored?.destroy());
  await step('stop source', 30_000, async () => ctx.source?.destroy());
  await step('stop sshd', 30_000, async () => ctx.sshd?.stop());
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t(
  'restore --remote of an S3 backup: streamed from the bucket to the database host, WAL read from the bucket there; PostgreSQL starts with exactly the rows',
  async (ctx) => {
    const pgbk = (args: readonly string[], onSpawn?: (pid: number) => void): Promise<RunResult> =>
      runPgbk(['--config', ctx.config!, ...args], { cwd: ctx.root!, ...(onSpawn ? { onSpawn } : {}) });
    ok(
      await step(
        'backup',
        40_000,
        (s) => pgbk(['backup', 'main'], s),
        () => ctx.source!.logTail(20),
      ),
      'backup',
    );
    const [b] = await readBackups(ctx.catalog!, 'main');
    assert.is(b?.status, 'DONE');
    // Rows only the WAL after the backup holds.
    const src = ctx.source!;
    await src.sql('INSERT INTO t SELECT generate_series(1001, 1500)');
    const seg = await src.sql('SELECT pg_walfile_name(pg_switch_wal())');
    await step(
      'archive',
      30_000,
      () => waitForQuery(src, `SELECT last_archived_wal >= '${seg}' FROM pg_stat_archiver`, 't', 30_000),
      () => src.logTail(20),
    );

    const dest = await tempDir('pgbk-s3-rr-');
    await chownToPostgres(dest);
    const sshd = ctx.sshd!;
    const r = ok(
      await step('restore --remote', 60_000, (s) =>
        pgbk(
          [
            'restore',
            'main',
            'latest',
            '--target-dir',
            dest,
            '--remote',
            `postgres@127.0.0.1:${sshd.port}`,
            '--identity',
            sshd.identityFile,
            '--known-hosts',
            sshd.knownHosts,
          ],
          s,
        ),
      ),
      'restore --remote',
    );
    assert.match(r.stdout, new RegExp(`Restored backup ${b!.id} of main onto `), r.stdout);
    assert.match(
      r.stdout,
      new RegExp(`WAL: +read on demand from ${ctx.catalog!.replace(/[/.]/g, '\\$&')} by the database host \\(pgbk --config ${ctx.config}`),
      r.stdout,
    );
    const auto = await readFile(path.join(dest, 'postgresql.auto.conf'), 'utf8');
    const restoreCommand = auto.split('\n').find((l) => l.startsWith('restore_command')) ?? '';
    assert.ok(restoreCommand.includes(ctx.config!) && restoreCommand.includes('wal-fetch'), auto);
    assert.not.ok(restoreCommand.includes('--from') || restoreCommand.includes('pgbk_wal'), auto);

    ctx.restored = await step(
      'start restored',
      60_000,
      () => startClusterOn(dest, { conf: { archive_mode: 'off' }, wait: false }),
      () => readLog(dest),
    );
    const restored = ctx.restored;
    await step(
      'recovery',
      60_000,
      () => waitForQuery(restored, 'SELECT pg_is_in_recovery()', 'f', 60_000),
      () => restored.logTail(40),
    );
    assert.is(await ctx.restored.sql('SELECT count(*), min(n), max(n) FROM t'), '1500|1|1500');
  },
);

t.run();
