/**
 * The `ssh` method into an s3:// catalog on a real radosgw (test/support/rgw.ts, once per process),
 * from a PostgreSQL cluster with a tablespace reached through a private sshd: chunks stored
 * content-addressed in the bucket (main/chunks/<2 hex>/<sha256>.zst), the tree in files.json
 * (formatVersion 4), nothing staged locally; the next backup refers to the unchanged chunks by hash
 * and stores only the changed ones; list, show, status, verify; a PITR restore from the bucket that
 * PostgreSQL starts with the exact rows (tablespace included); retention deleting the older backup
 * plans a chunk sweep with its reason and leaves every chunk the retained backup refers to; a
 * damaged chunk is named by verify and refused by restore; radosgw stopped mid-backup leaves no DONE
 * backup and no file list, and the next backup is good.
 *
 * WAL: archive_command copies into the catalog's local spool (s3.spool), which apply archives into
 * the bucket; restore_command is pgbk wal-fetch reading the bucket.
 */
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openS3Repository, type S3Repository } from '../../../src/catalog/s3/driver.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import { CLI, runPgbk, type RunResult } from '../../support/pgbk.js';
import { chownToPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';
import { rgw } from '../../support/rgw.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';

interface Ctx {
  root?: string;
  cluster?: TestCluster;
  sshd?: TestSshd;
  repo?: S3Repository;
  configPath?: string;
  restored?: TestCluster | undefined;
  first?: string;
  second?: string;
}
const t = suite<Ctx>('ssh method into an s3:// catalog (radosgw)', {});

const ok = (r: RunResult, what: string): RunResult => {
  assert.is(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
};

function pgbk(ctx: Ctx, args: readonly string[]): Promise<RunResult> {
  return runPgbk(['--config', ctx.configPath!, ...args], { cwd: ctx.root! });
}

async function keys(repo: S3Repository, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of repo.listNames(prefix, { recursive: true })) out.push(e.key);
  return out.sort();
}

interface Listed {
  readonly id: string;
  readonly status: string;
}
async function listed(ctx: Ctx): Promise<Listed[]> {
  return (JSON.parse(ok(await pgbk(ctx, ['list', '--json']), 'list').stdout) as { backups: Listed[] }).backups;
}

interface StoredRecord {
  readonly status: string;
  readonly method: string;
  readonly compression: string;
  readonly checksums: Record<string, string>;
  readonly sizes: { data: number; stored: number };
  readonly copiedBytes: number;
  readonly reusedBytes: number;
  readonly reusedFrom?: string;
}
async function record(ctx: Ctx, id: string): Promise<StoredRecord> {
  return JSON.parse((await ctx.repo!.get(`main/backups/${id}/backup.json`))!.toString('utf8')) as StoredRecord;
}

async function switchAndArchive(cluster: TestCluster): Promise<void> {
  const wal = await cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  await waitForQuery(cluster, `SELECT last_archived_wal >= '${wal}' FROM pg_stat_archiver`, 't', 30_000);
}

t.before(async (ctx) => {
  const gw = await rgw(); // first: it puts the credentials file into the environment PostgreSQL inherits
  ctx.root = await tempDir('pgbk-s3-ssh-');
  await chmod(ctx.root, 0o755);
  const spool = path.join(ctx.root, 'spool');
  const incoming = path.join(spool, 'main', 'incoming');
  await mkdir(incoming, { recursive: true, mode: 0o770 });
  await chownToPostgres(spool);
  ctx.sshd = await startSshd();
  ctx.cluster = await startCluster({ archiveCommand: `test ! -f ${incoming}/%f && cp %p ${incoming}/.%f.tmp && mv ${incoming}/.%f.tmp ${incoming}/%f` });
  const tsDir = path.join(ctx.root, 'ts1');
  await mkdir(tsDir);
  await chownToPostgres(tsDir);
  await ctx.cluster.sql(`CREATE TABLESPACE ts1 LOCATION '${tsDir}'`);
  await ctx.cluster.sql(
    'CREATE TABLE t (n int, pad text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g; CREATE TABLE in_ts (id int) TABLESPACE ts1; INSERT INTO in_ts SELECT generate_series(1, 700)',
  );
  const cfg = await gw.bucket('pgbk/');
  ctx.repo = await openS3Repository(cfg);
  ctx.configPath = path.join(ctx.root, 'pgbk.yaml');
  const c = ctx.cluster;
  const s = ctx.sshd;
  await writeFile(
    ctx.configPath,
    [
      `catalog: ${cfg.url}`,
      `s3: { endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true, spool: "${spool}" }`,
      'servers:',
      '  main:',
      `    pgdata: ${c.pgdata}`,
      `    ssh: { host: 127.0.0.1, port: ${s.port}, user: postgres, identityFile: ${s.identityFile}, knownHosts: ${s.knownHosts}, psqlConnection: "host=${c.socketDir} port=${c.port} user=postgres dbname=postgres", pgbk: "${process.execPath} ${CLI}" }`,
      '    backup: { method: ssh, schedule: "0 3 * * *" }',
      '    retention: { redundancy: 2 }',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
});

t.after(async (ctx) => {
  await ctx.restored?.destroy();
  await ctx.cluster?.destroy();
  await ctx.sshd?.stop();
  ctx.repo?.close();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t(
  'apply takes an ssh backup into the bucket: chunks content-addressed, files.json records the tree, nothing local; list, show, status, verify',
  async (ctx) => {
    ok(await pgbk(ctx, ['validate']), 'validate');
    const applied = ok(await pgbk(ctx, ['apply']), 'apply');
    assert.match(applied.stdout, /base-backup .*: done/, applied.stdout);
    const [b, ...more] = await listed(ctx);
    assert.ok(b !== undefined && more.length === 0, applied.stdout);
    assert.is(b.status, 'DONE', `${applied.stdout}${applied.stderr}`);
    ctx.first = b.id;
    const prefix = `main/backups/${b.id}/`;
    assert.equal(await keys(ctx.repo!, prefix), [`${prefix}backup.json`, `${prefix}data/backup_label`, `${prefix}data/tablespace_map`, `${prefix}files.json`]);
    const rec = await record(ctx, b.id);
    assert.is(rec.method, 'ssh');
    assert.is(rec.compression, 'zstd');
    for (const name of ['files.json', 'data/backup_label']) assert.is(rec.checksums[name], sha256Hex((await ctx.repo!.get(`${prefix}${name}`))!), name);
    const list = JSON.parse((await ctx.repo!.get(`${prefix}files.json`))!.toString('utf8')) as {
      formatVersion: number;
      dirs: [string, number, number][];
      files: [string, number, number, number, string[]][];
    };
    assert.is(list.formatVersion, 4);
    assert.ok(
      list.dirs.some(([p]) => p === 'data/base'),
      'data/base recorded',
    );
    assert.ok(
      list.dirs.some(([p]) => /^tablespaces\/\d+\/PG_15_/.test(p)),
      'the tablespace recorded',
    );
    // Every chunk a file refers to is stored once, under its hash.
    const chunkKeys = new Set(await keys(ctx.repo!, 'main/chunks/'));
    const hashes = new Set(list.files.flatMap((f) => f[4]));
    for (const h of hashes) assert.ok(chunkKeys.has(`main/chunks/${h.slice(0, 2)}/${h}.zst`), `chunk ${h} stored`);
    assert.is(chunkKeys.size, hashes.size);
    assert.ok(rec.sizes.stored < rec.sizes.data / 3, `stored ${rec.sizes.stored} of ${rec.sizes.data}: compressed and deduplicated`);
    // Nothing staged locally, no multipart upload left open.
    assert.equal(
      (await readdir(ctx.root!)).filter((n) => n.startsWith('s3')),
      [],
    );
    assert.equal(await ctx.repo!.listUploads(), []);

    const check = ok(await pgbk(ctx, ['check']), 'check').stdout;
    assert.match(check, /catalog: s3:\/\/\S+: reachable, credentials accepted, write\/read\/delete probe ok/, check);
    assert.match(check, /ssh: postgres@127\.0\.0\.1:\d+ reachable, host key verified/, check);
    assert.match(ok(await pgbk(ctx, ['show', 'main', b.id]), 'show').stdout, /DONE/);
    ok(await pgbk(ctx, ['status']), 'status');
    const v = ok(await pgbk(ctx, ['verify', 'main']), 'verify');
    assert.match(v.stdout + v.stderr, /chunks? read/);
    assert.match(ok(await pgbk(ctx, ['plan']), 'plan').stdout, /No changes\./);
  },
);

t('the next backup stores only the changed chunks and refers to the others by hash', async (ctx) => {
  await ctx.cluster!.sql('UPDATE t SET pad = pad WHERE n <= 200');
  await sleep(1100); // backup ids are per second
  ok(await pgbk(ctx, ['backup', 'main']), 'backup');
  const second = (await listed(ctx)).find((b) => b.id !== ctx.first)!;
  assert.is(second.status, 'DONE');
  ctx.second = second.id;
  const rec = await record(ctx, second.id);
  assert.is(rec.reusedFrom, ctx.first);
  assert.ok(rec.reusedBytes > rec.copiedBytes, `reused ${rec.reusedBytes}, copied ${rec.copiedBytes}`);
  const firstRec = await record(ctx, ctx.first!);
  assert.ok(rec.sizes.stored < firstRec.sizes.stored / 2, `second stored ${rec.sizes.stored} vs first ${firstRec.sizes.stored}`);
});

t('PITR restore from the bucket: PostgreSQL starts with the exact rows, tablespace included', async (ctx) => {
  const cluster = ctx.cluster!;
  await cluster.sql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(20001, 20500) g; INSERT INTO in_ts SELECT generate_series(701, 900)');
  await cluster.sql("SELECT pg_create_restore_point('s3_ssh_rp')");
  await cluster.sql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(20501, 21000) g');
  await switchAndArchive(cluster);
  ok(await pgbk(ctx, ['apply']), 'apply (archive)');
  const target = path.join(ctx.root!, 'restored');
  const r = ok(await pgbk(ctx, ['restore', 'main', 'latest', '--target-dir', target, '--target-name', 's3_ssh_rp', '--target-action', 'promote']), 'restore');
  assert.match(r.stdout + r.stderr, new RegExp(ctx.second!));
  ctx.restored = await startClusterOn(target, { conf: { archive_mode: 'off' } });
  await waitForQuery(ctx.restored, 'SELECT pg_is_in_recovery()', 'f', 90_000);
  assert.is(await ctx.restored.sql('SELECT count(*), min(n), max(n) FROM t'), '20500|1|20500');
  assert.is(await ctx.restored.sql('SELECT count(*) FROM in_ts'), '900');
  await ctx.restored.destroy();
  ctx.restored = undefined;
  await rm(target, { recursive: true, force: true });
  await rm(`${target}_tablespaces`, { recursive: true, force: true });
});

t('a damaged chunk: verify names its key, restore refuses; put back, verify passes', async (ctx) => {
  const list = JSON.parse((await ctx.repo!.get(`main/backups/${ctx.second}/files.json`))!.toString('utf8')) as {
    files: [string, number, number, number, string[]][];
  };
  // PG_VERSION: restored first (so the refused restore stops early), and its chunk is every backup's.
  const pgVersion = list.files.find((f) => f[0] === 'data/PG_VERSION')!;
  const h = pgVersion[4][0]!;
  const key = `main/chunks/${h.slice(0, 2)}/${h}.zst`;
  const original = (await ctx.repo!.get(key))!;
  await ctx.repo!.put(key, Buffer.from('not a zstd frame'));
  try {
    const bad = await pgbk(ctx, ['verify', 'main', ctx.second!]);
    assert.is.not(bad.code, 0, bad.stdout);
    assert.match(`${bad.stdout}${bad.stderr}`, new RegExp(h));
    const target = path.join(ctx.root!, 'restored-bad');
    const r = await pgbk(ctx, ['restore', 'main', ctx.second!, '--target-dir', target]);
    assert.is(r.code, 1, r.stdout);
    assert.match(r.stderr, new RegExp(h));
    await rm(target, { recursive: true, force: true });
    await rm(`${target}_tablespaces`, { recursive: true, force: true });
  } finally {
    await ctx.repo!.put(key, original);
  }
  ok(await pgbk(ctx, ['verify', 'main', ctx.second!]), 'verify after repair');
});

t('retention deletes the older backup and plans a chunk sweep with its reason; every chunk the retained backups refer to stays', async (ctx) => {
  await ctx.cluster!.sql('UPDATE t SET pad = md5(pad) WHERE n <= 300');
  await sleep(1100);
  ok(await pgbk(ctx, ['backup', 'main']), 'backup (third)');
  const plan = ok(await pgbk(ctx, ['plan']), 'plan').stdout;
  assert.match(plan, new RegExp(`delete-backup +${ctx.first}`), plan);
  assert.match(plan, /sweep-chunks/, plan);
  assert.match(plan, new RegExp(`backup ${ctx.first} leaves the catalog: remove the chunks no retained backup`), plan);
  const applied = ok(await pgbk(ctx, ['apply']), 'apply (retention)');
  assert.match(applied.stdout, /sweep-chunks .*: done/, applied.stdout);
  const left = await listed(ctx);
  assert.is(left.length, 2);
  assert.not.ok(left.some((b) => b.id === ctx.first));
  assert.equal(await keys(ctx.repo!, `main/backups/${ctx.first}/`), []);
  ok(await pgbk(ctx, ['verify', 'main']), 'verify (retained backups complete)');
});

t('radosgw stopped while an ssh backup runs: not DONE, no file list of it, the next backup is DONE and verified', async (ctx) => {
  const gw = await rgw();
  const before = new Set((await listed(ctx)).map((b) => b.id));
  await ctx.cluster!.sql('UPDATE t SET pad = md5(pad) WHERE n <= 5000');
  await sleep(1100);
  const running = pgbk(ctx, ['backup', 'main']);
  // Stop the gateway as soon as the new backup's STARTED record is in the bucket (before its chunks).
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ids = (await keys(ctx.repo!, 'main/backups/')).map((k) => k.split('/')[2]!).filter((id) => !before.has(id));
    if (ids.length > 0) break;
    assert.ok(Date.now() < deadline, 'the backup never started');
    await sleep(30);
  }
  const t0 = Date.now();
  await gw.stopGateway();
  // Down until the backup has given up (no fixed outage a slow machine could outlast).
  const failed = await running;
  const t1 = Date.now();
  await gw.startGateway();
  process.stderr.write(`radosgw down: the backup gave up after ${((t1 - t0) / 1000).toFixed(1)} s\n`);
  assert.is.not(failed.code, 0, `${failed.stdout}${failed.stderr}`);
  const b = (await listed(ctx)).find((x) => !before.has(x.id));
  assert.ok(b !== undefined, failed.stdout);
  assert.is(b.status, 'FAILED', `${failed.stdout}${failed.stderr}`);
  assert.equal(await keys(ctx.repo!, `main/backups/${b.id}/files.json`), []);
  await sleep(1100);
  const next = ok(await pgbk(ctx, ['backup', 'main']), 'backup after the outage');
  assert.match(next.stdout, /DONE/, next.stdout);
  const good = (await listed(ctx)).find((x) => !before.has(x.id) && x.id !== b.id);
  assert.ok(good !== undefined && good.status === 'DONE', next.stdout);
  ok(await pgbk(ctx, ['verify', 'main', good.id]), 'verify after the outage');
});

t.run();
