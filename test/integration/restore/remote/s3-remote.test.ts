/**
 * `pgbk restore --remote` from an s3:// catalog (radosgw, once per process) onto a "database host"
 * reached over a real sshd (this machine, as postgres). The source cluster archives straight into
 * the bucket with `pgbk --config F wal-push main %p`; the backup is streamed from the bucket (ranged
 * GETs, prefetched) through this process to the database host, and the restored cluster's
 * restore_command reads the bucket itself with that same pgbk and --config
 * (src/restore/remote-bucket-wal.ts): PostgreSQL starts on it with exactly the rows.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
  // pgbk backup without a spool fails ("incoming/ needs a local spool directory"): one, owned
  // by postgres, whose wal-push may create <spool>/main there.
  await mkdir(path.join(ctx.root, 'spool'));
  await chownToPostgres(path.join(ctx.root, 'spool'));
  ctx.source = await startCluster({ archiveCommand: `${process.execPath} ${CLI} --config ${ctx.config} wal-push main %p` });
  // Read by the archiver and, over SSH, by the restore (as postgres on the database host).
  await writeFile(
    ctx.config,
    `catalog: ${cfg.url}\ns3: { endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true, spool: "${ctx.root}/spool" }\nservers:\n  main:\n    connection: "${ctx.source.conninfo}"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 1 }\n`,
    { mode: 0o644 },
  );
  await ctx.source.sql('CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000)');
});

t.after(async (ctx) => {
  await ctx.restored?.destroy();
  await ctx.source?.destroy();
  await ctx.sshd?.stop();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t(
  'restore --remote of an S3 backup: streamed from the bucket to the database host, WAL read from the bucket there; PostgreSQL starts with exactly the rows',
  async (ctx) => {
    const pgbk = (args: readonly string[]): Promise<RunResult> => runPgbk(['--config', ctx.config!, ...args], { cwd: ctx.root! });
    ok(await pgbk(['backup', 'main']), 'backup');
    const [b] = await readBackups(ctx.catalog!, 'main');
    assert.is(b?.status, 'DONE');
    // Rows only the WAL after the backup holds.
    const src = ctx.source!;
    await src.sql('INSERT INTO t SELECT generate_series(1001, 1500)');
    const seg = await src.sql('SELECT pg_walfile_name(pg_switch_wal())');
    await waitForQuery(src, `SELECT last_archived_wal >= '${seg}' FROM pg_stat_archiver`, 't', 60_000);

    const dest = await tempDir('pgbk-s3-rr-');
    await chownToPostgres(dest);
    const sshd = ctx.sshd!;
    const r = ok(
      await pgbk([
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
      ]),
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

    ctx.restored = await startClusterOn(dest, { conf: { archive_mode: 'off' } });
    await waitForQuery(ctx.restored, 'SELECT pg_is_in_recovery()', 'f', 90_000);
    assert.is(await ctx.restored.sql('SELECT count(*), min(n), max(n) FROM t'), '1500|1|1500');
  },
);

t.run();
