/**
 * Base backups into an s3:// catalog on a real radosgw (test/support/rgw.ts, once per process)
 * from one PostgreSQL cluster shared by every test here: the basebackup method streamed into a
 * multipart upload, DONE, a PITR restore read back from the bucket that PostgreSQL starts on with
 * the exact rows, the lease lock between two processes, the read commands, retention, the gateway
 * vanishing mid-backup, a wrong bucket or credentials, and the ssh method refused.
 *
 * WAL: archive_command copies into the catalog's local spool (s3.spool, <spool>/main/incoming),
 * which apply archives into the bucket; restore_command is pgbk wal-fetch reading the bucket.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openS3Repository, type S3Repository } from '../../../src/catalog/s3/driver.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import { runPgbk, type RunResult } from '../../support/pgbk.js';
import { chownToPostgres, isAlive, PG_BINDIR, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';
import { rgw, WRONG_PROFILE } from '../../support/rgw.js';

interface Ctx {
  root?: string;
  spool?: string;
  cluster?: TestCluster;
  /** PGBK_PG_BINDIR whose pg_basebackup is throttled (the gateway is stopped mid-copy). */
  slowBin?: string;
  restored?: TestCluster | undefined;
}
const t = suite<Ctx>('basebackup into an s3:// catalog (radosgw)', {});

/** A catalog in a fresh bucket, its config file, and the repository for looking inside. */
interface S3World {
  readonly cfg: S3RepositoryConfig;
  readonly repo: S3Repository;
  readonly configPath: string;
  pgbk(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<RunResult>;
}

async function writeS3Config(ctx: Ctx, file: string, url: string, s3Extra: string, serverYaml: string): Promise<void> {
  const gw = await rgw();
  const indented = serverYaml
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  await writeFile(
    file,
    `catalog: ${url}\ns3: { endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true, spool: "${ctx.spool}"${s3Extra} }\nservers:\n  main:\n    connection: "${ctx.cluster!.conninfo}"\n${indented}\n`,
    { mode: 0o644 },
  );
}

async function s3World(ctx: Ctx, serverYaml: string, name: string): Promise<S3World> {
  const cfg = await (await rgw()).bucket('pgbk/');
  const repo = await openS3Repository(cfg);
  const configPath = path.join(ctx.root!, `${name}.yaml`);
  await writeS3Config(ctx, configPath, cfg.url, '', serverYaml);
  return { cfg, repo, configPath, pgbk: (args, env) => runPgbk(['--config', configPath, ...args], { cwd: ctx.root!, ...(env === undefined ? {} : { env }) }) };
}

async function keys(repo: S3Repository, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of repo.listNames(prefix, { recursive: true })) out.push(e.key);
  return out;
}

const ok = (r: RunResult, what: string): RunResult => {
  assert.is(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
};

interface ListedBackup {
  readonly id: string;
  readonly status: string;
}
async function listed(w: S3World): Promise<ListedBackup[]> {
  return (JSON.parse(ok(await w.pgbk(['list', '--json']), 'list').stdout) as { backups: ListedBackup[] }).backups;
}

interface StoredRecord {
  readonly status: string;
  readonly error?: string;
  readonly checksums: Record<string, string>;
  readonly sizes: { data: number; stored: number };
}
async function record(w: S3World, id: string): Promise<StoredRecord> {
  return JSON.parse((await w.repo.get(`main/backups/${id}/backup.json`))!.toString('utf8')) as StoredRecord;
}

/** PIDs of the throttled pg_basebackup (ctx.slowBin) copying from `cluster`, found by their command lines. */
function throttledCopies(cluster: TestCluster): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (args[0]?.endsWith('/pg_basebackup') && args.includes('--max-rate=4M') && args.some((a) => a.includes(cluster.socketDir))) out.push(Number(pid));
  }
  return out;
}

/** Until the server has archived (into the spool) the segment it just closed. */
async function switchAndArchive(cluster: TestCluster): Promise<void> {
  const wal = await cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  await waitForQuery(cluster, `SELECT last_archived_wal >= '${wal}' FROM pg_stat_archiver`, 't', 30_000);
}

t.before(async (ctx) => {
  await rgw(); // first: it puts the credentials file into the environment PostgreSQL inherits
  ctx.root = await tempDir('pgbk-s3-backup-');
  await chmod(ctx.root, 0o755);
  ctx.spool = path.join(ctx.root, 'spool');
  const incoming = path.join(ctx.spool, 'main', 'incoming');
  await mkdir(incoming, { recursive: true, mode: 0o770 });
  await chownToPostgres(ctx.spool);
  ctx.cluster = await startCluster({ archiveCommand: `test ! -f ${incoming}/%f && cp %p ${incoming}/.%f.tmp && mv ${incoming}/.%f.tmp ${incoming}/%f` });
  await ctx.cluster.sql('CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000)');
  ctx.slowBin = path.join(ctx.root, 'slowbin');
  await mkdir(ctx.slowBin);
  for (const name of await readdir(PG_BINDIR)) if (name !== 'pg_basebackup') await symlink(path.join(PG_BINDIR, name), path.join(ctx.slowBin, name));
  await writeFile(path.join(ctx.slowBin, 'pg_basebackup'), `#!/bin/sh\nexec ${path.join(PG_BINDIR, 'pg_basebackup')} "$@" --max-rate=4M\n`, { mode: 0o755 });
});
t.after(async (ctx) => {
  await ctx.restored?.destroy();
  await ctx.cluster?.destroy();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t(
  'apply streams a basebackup into S3 (base.tar.zst and backup_manifest, their sha256 recorded) → DONE; list, show, status, verify, metrics; PITR restore from the bucket starts with the exact rows',
  async (ctx) => {
    const w = await s3World(ctx, 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 2 }', 'lifecycle');
    ok(await w.pgbk(['validate']), 'validate');
    const first = ok(await w.pgbk(['apply']), 'apply');
    assert.match(first.stdout, /base-backup .*: done/, first.stdout);
    const [b, ...more] = await listed(w);
    assert.ok(b !== undefined && more.length === 0, first.stdout);
    assert.is(b.status, 'DONE', `${first.stdout}${first.stderr}`);
    const prefix = `main/backups/${b.id}/`;
    assert.equal(await keys(w.repo, prefix), [`${prefix}backup.json`, `${prefix}backup_manifest`, `${prefix}base.tar.zst`]);
    // Nothing staged locally (no "s3:" directory), no multipart upload left open.
    assert.equal(
      (await readdir(ctx.root!)).filter((n) => n.startsWith('s3')),
      [],
    );
    assert.equal(await w.repo.listUploads(), []);
    const rec = await record(w, b.id);
    for (const name of ['backup_manifest', 'base.tar.zst']) assert.is(rec.checksums[name], sha256Hex((await w.repo.get(`${prefix}${name}`))!), name);
    assert.ok(rec.sizes.data > rec.sizes.stored, JSON.stringify(rec.sizes));

    assert.match(ok(await w.pgbk(['show', 'main', b.id]), 'show').stdout, /DONE/);
    ok(await w.pgbk(['status']), 'status');
    ok(await w.pgbk(['verify', 'main']), 'verify');
    assert.match(ok(await w.pgbk(['metrics']), 'metrics').stdout, /pgbk_/);
    assert.match(ok(await w.pgbk(['plan']), 'plan').stdout, /No changes\./);

    // PITR: rows 1..1500 at the restore point, more after it; the WAL reaches the bucket by apply.
    const cluster = ctx.cluster!;
    await cluster.sql('INSERT INTO t SELECT generate_series(1001, 1500)');
    await cluster.sql("SELECT pg_create_restore_point('s3_rp')");
    await cluster.sql('INSERT INTO t SELECT generate_series(1501, 2000)');
    await switchAndArchive(cluster);
    ok(await w.pgbk(['apply']), 'apply (archive)');
    // status and list read the bucket's WAL archive (they once stat-ed a local path and saw none).
    const st = JSON.parse(ok(await w.pgbk(['status', '--json']), 'status').stdout) as { servers: { walSegments: number }[] };
    assert.ok((st.servers[0]?.walSegments ?? 0) >= 2, JSON.stringify(st.servers[0]));
    assert.match(ok(await w.pgbk(['list']), 'list').stdout, /\b(16|32|48|64) MiB\b/);
    const target = path.join(ctx.root!, 'restored');
    const r = ok(await w.pgbk(['restore', 'main', 'latest', '--target-dir', target, '--target-name', 's3_rp', '--target-action', 'promote']), 'restore');
    assert.match(r.stdout + r.stderr, new RegExp(b.id));
    ctx.restored = await startClusterOn(target, { conf: { archive_mode: 'off' } });
    await waitForQuery(ctx.restored, 'SELECT pg_is_in_recovery()', 'f', 90_000);
    assert.is(await ctx.restored.sql('SELECT count(*), min(n), max(n) FROM t'), '1500|1|1500');
    await ctx.restored.destroy();
    ctx.restored = undefined;
    w.repo.close();
  },
);

t('two applies from two processes at once: the S3 lease lets exactly one take the backup', async (ctx) => {
  const w = await s3World(ctx, 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 2 }', 'concurrent');
  const [a, b] = await Promise.all([w.pgbk(['apply', '--lock-timeout', '5m']), w.pgbk(['apply', '--lock-timeout', '5m'])]);
  ok(a, 'apply A');
  ok(b, 'apply B');
  assert.is((await listed(w)).length, 1, `${a.stdout}\n---\n${b.stdout}`);
  const took = [a, b].filter((r) => /base-backup .*: done/.test(r.stdout));
  assert.is(took.length, 1, `${a.stdout}\n---\n${b.stdout}`);
  // Released: a tombstone nobody holds.
  assert.ok((await w.repo.stat('main/lock')) !== undefined);
  assert.not.match(ok(await w.pgbk(['status', '--json']), 'status').stdout, /"pid"/);
  w.repo.close();
});

t('retention on S3: the backup outside redundancy 1 is deleted through the port, every object of it', async (ctx) => {
  const w = await s3World(ctx, 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 1 }', 'retention');
  ok(await w.pgbk(['apply']), 'apply');
  const [old] = await listed(w);
  await sleep(1100); // backup ids are per second
  const one = ok(await w.pgbk(['backup', 'main']), 'backup');
  assert.match(one.stdout, /DONE/);
  const after = ok(await w.pgbk(['apply']), 'apply (retention)');
  assert.match(after.stdout, new RegExp(`delete-backup +${old!.id}`));
  const left = await listed(w);
  assert.is(left.length, 1);
  assert.is.not(left[0]!.id, old!.id);
  assert.equal(await keys(w.repo, `main/backups/${old!.id}/`), []);
  w.repo.close();
});

t('radosgw stopped mid-backup: FAILED with the reason, nothing DONE, its upload aborted by the next apply, which takes a good backup', async (ctx) => {
  const gw = await rgw();
  const w = await s3World(ctx, 'backup: { schedule: "0 3 * * *", compression: none }\nretention: { redundancy: 2 }', 'gateway-stop');
  await ctx.cluster!.sql('CREATE TABLE IF NOT EXISTS filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 300000) g');
  const running = w.pgbk(['apply'], { PGBK_PG_BINDIR: ctx.slowBin! });
  // Stop the gateway once the multipart upload exists (the first 16 MiB part is on its way).
  const deadline = Date.now() + 120_000;
  while ((await w.repo.listUploads()).length === 0) {
    assert.ok(Date.now() < deadline, 'no multipart upload started');
    await sleep(100);
  }
  const copying = throttledCopies(ctx.cluster!);
  assert.ok(copying.length > 0, 'no throttled pg_basebackup running');
  await gw.stopGateway();
  // Down until the backup has given up on the upload (on the first failure it stops its
  // pg_basebackup), not for a fixed time that a slow machine could outlast; then back, so the
  // FAILED record (retried for a minute) can be written.
  const outage = Date.now() + 120_000;
  while (copying.some(isAlive)) {
    assert.ok(Date.now() < outage, 'the backup never gave up while radosgw was down');
    await sleep(100);
  }
  await gw.startGateway();
  const failed = await running;
  assert.is(failed.code, 1, `${failed.stdout}${failed.stderr}`);
  const [b, ...more] = await listed(w);
  assert.ok(b !== undefined && more.length === 0, failed.stdout);
  assert.is(b.status, 'FAILED');
  const rec = await record(w, b.id);
  assert.match(rec.error ?? '', /cannot (reach|upload part)|ECONNREFUSED|socket/, rec.error);
  assert.equal(await keys(w.repo, `main/backups/${b.id}/`), [`main/backups/${b.id}/backup.json`]);
  // The next apply aborts what was left open and takes a good backup.
  const next = ok(await w.pgbk(['apply']), 'apply after the outage');
  assert.equal(await w.repo.listUploads(), []);
  const statuses = (await listed(w)).map((x) => x.status);
  assert.ok(statuses.includes('DONE'), `${next.stdout}${next.stderr}`);
  w.repo.close();
});

t('wrong credentials or a missing bucket: apply fails naming them, and nothing is written', async (ctx) => {
  const gw = await rgw();
  const cfg = await gw.bucket('pgbk/');
  const wrongCreds = path.join(ctx.root!, 'wrong-creds.yaml');
  await writeS3Config(ctx, wrongCreds, cfg.url, `, profile: ${WRONG_PROFILE}`, 'retention: { redundancy: 1 }');
  const r1 = await runPgbk(['--config', wrongCreds, 'apply'], { cwd: ctx.root! });
  assert.is(r1.code === 0, false);
  assert.match(r1.stderr, new RegExp(`refused the credentials .* for bucket ${cfg.bucket}`), r1.stderr);
  assert.not.match(r1.stderr, /not-the-secret/);
  const repo = await openS3Repository(cfg);
  assert.equal(await keys(repo, ''), []);
  repo.close();
  const missing = path.join(ctx.root!, 'missing-bucket.yaml');
  await writeS3Config(ctx, missing, 's3://pgbk-no-such-bucket/x', '', 'retention: { redundancy: 1 }');
  const r2 = await runPgbk(['--config', missing, 'apply'], { cwd: ctx.root! });
  assert.is(r2.code === 0, false);
  assert.match(r2.stderr, /bucket pgbk-no-such-bucket does not exist/, r2.stderr);
});

t.run();
