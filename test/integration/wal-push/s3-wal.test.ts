/**
 * The WAL side of an S3 catalog (issue 12 items 3 and 4), against the test run's radosgw and one
 * real PostgreSQL whose archive_command is what `pgbk wal-push --print-archive-command` prints for
 * an s3:// catalog: the shell fast path in front of the tiny client, whose long-lived worker pushes
 * every .ready segment straight into the bucket — acknowledged only once the object is stored and
 * verified, never overwritten (a conflicting copy is refused and quarantined), nothing lost when
 * radosgw goes away mid-archiving (PostgreSQL retries), and a clear error, nothing written, for
 * wrong credentials, a missing bucket or a wrong endpoint. One cluster and one bucket for all.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registerS3Catalog, repositoryOf } from '../../../src/catalog/open.js';
import { quarantinedNames } from '../../../src/catalog/quarantine.js';
import { catalogKeys } from '../../../src/catalog/layout.js';
import { listArchivedWal, readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { writeBackupRecord } from '../../../src/catalog/backups.js';
import { backup } from '../../unit/plan/fixtures.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';
import { readWalHeader } from '../../../src/pg/wal-header.js';
import { buildSpoolCleanupCommand, quoteConfValue } from '../../../src/pg/recovery-conf.js';
import { buildFastRestoreCommand } from '../../../src/wal-fetch/fast-path.js';
import { localWorkerKey } from '../../../src/wal-push/target.js';
import { freePort } from '../../support/free-port.js';
import { CLI, runPgbk, type RunResult } from '../../support/pgbk.js';
import { chownToPostgres, PG_BINDIR, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';
import { rgw, WRONG_PROFILE, type TestRgw } from '../../support/rgw.js';
import { recordingProxy } from '../../support/s3-proxy.js';

const POSTGRES_UID = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
// pgbk's runtime directory follows TMPDIR (os.tmpdir()), which test/uvu-timed.mjs sets per run.
const RUNTIME = path.join(os.tmpdir(), `pgbk-${POSTGRES_UID}`);

let gw: TestRgw;
let s3: S3RepositoryConfig;
let root: string;
let configPath: string;
let cluster: TestCluster;
let key = '';
/** Configuration files whose workers this file started (stopped by PID at the end). */
const configs: string[] = [];

async function writeConfig(file: string, catalog: string, s3Yaml: string, conninfo: string): Promise<void> {
  await writeFile(file, `catalog: ${catalog}\ns3: ${s3Yaml}\nservers:\n  main:\n    connection: "${conninfo}"\n    retention: { redundancy: 1 }\n`);
  await chownToPostgres(file);
}

function pgbk(args: readonly string[], opts: { cwd?: string; config?: string } = {}): Promise<RunResult> {
  return runPgbk(['--config', opts.config ?? configPath, ...args], { asPostgres: true, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
}

async function logText(k: string): Promise<string> {
  return readFile(path.join(RUNTIME, `walpush-${k}.log`), 'utf8').catch(() => '');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readyFiles(): Promise<string[]> {
  return (await readdir(path.join(cluster.pgdata, 'pg_wal', 'archive_status'))).filter((n) => n.endsWith('.ready'));
}

async function waitNoBacklog(ms: number): Promise<string[]> {
  const t0 = Date.now();
  let ready = await readyFiles();
  while (ready.length > 0 && Date.now() - t0 < ms) {
    await new Promise((r) => setTimeout(r, 200));
    ready = await readyFiles();
  }
  return ready;
}

async function switchSegments(n: number): Promise<void> {
  await cluster.sql('CREATE TABLE IF NOT EXISTS filler (x int, pad text)');
  for (let i = 0; i < n; i++) {
    await cluster.sql("INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g");
    await cluster.sql('SELECT pg_switch_wal()');
  }
}

async function archiverStats(): Promise<{ archived: number; failed: number; last: string }> {
  const [a, f, l] = (await cluster.sql("SELECT archived_count, failed_count, coalesce(last_archived_wal, '') FROM pg_stat_archiver")).split('|');
  return { archived: Number(a), failed: Number(f), last: l ?? '' };
}

/** Every archived segment up to `last`: present in the bucket (no gap), checksum-verified, this cluster's. */
async function assertContiguous(last: string): Promise<number> {
  const archived = await listArchivedWal(s3.url, 'main');
  const segs = archived.segments.filter((s) => s <= last);
  assert.ok(segs.includes(last), `${last} not in the bucket: ${segs.join(' ')}`);
  const first = segs[0]!;
  assert.is(parseInt(last.slice(16), 16) - parseInt(first.slice(16), 16) + 1, segs.length, `gap in the archive: ${segs.join(' ')}`);
  const sysid = await cluster.sql('SELECT system_identifier FROM pg_control_system()');
  for (const s of segs) assert.is(readWalHeader(await readArchivedWal(s3.url, 'main', s))?.systemIdentifier, sysid, s);
  return segs.length;
}

/** Every object key in a bucket (through a repository opened on it with an empty prefix). */
async function bucketKeys(cfg: S3RepositoryConfig): Promise<string[]> {
  const { openS3Repository } = await import('../../../src/catalog/s3/driver.js');
  const repo = await openS3Repository({ ...cfg, url: `s3://${cfg.bucket}/`, prefix: '' });
  try {
    const keys: string[] = [];
    for await (const e of repo.listNames('', { recursive: true })) keys.push(e.key);
    return keys;
  } finally {
    repo.close();
  }
}

test.before(async () => {
  gw = await rgw(); // first: it puts the credentials file into the environment PostgreSQL inherits
  s3 = await gw.bucket('pgbk/');
  registerS3Catalog(s3);
  root = await tempDir('pgbk-s3wal-');
  configPath = path.join(root, 'pgbk.yaml');
  // The first archive_command is the plain one (Node per segment, straight to the bucket).
  const plain = `${process.execPath} ${CLI} --config ${configPath} wal-push main %p`;
  cluster = await startCluster({ archiveCommand: plain });
  await writeConfig(configPath, s3.url, `{ endpoint: "${gw.endpoint}", spool: "${root}/spool" }`, cluster.conninfo);
  await chownToPostgres(root);
});

test.after(async () => {
  for (const c of configs) {
    for (const pgdata of [cluster.pgdata, ...fakeDirs]) {
      const k = localWorkerKey(c, 'main', pgdata);
      for (const pid of new Set([...(await logText(k)).matchAll(/wal-push-worker\[(\d+)\]/g)].map((m) => Number(m[1])))) {
        if (alive(pid)) process.kill(pid, 'SIGTERM');
      }
    }
  }
  await restored?.destroy();
  await cluster?.destroy();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

const fakeDirs: string[] = [];
let restored: TestCluster | undefined;
/** A plain base backup (pg_basebackup -X none: its WAL comes from the bucket) taken early on. */
let baseDir = '';

test('plain wal-push archives into the bucket: server.json and the segment, nothing local', async () => {
  await switchSegments(2);
  assert.equal(await waitNoBacklog(60_000), [], cluster.logTail(20));
  const stats = await archiverStats();
  assert.is(stats.failed, 0, cluster.logTail(20));
  await assertContiguous(stats.last);
  const repo = await repositoryOf(s3.url);
  assert.ok((await repo.get(catalogKeys.serverJson('main'))) !== undefined, 'server.json in the bucket');
  // The catalog URL was never taken for a directory (the archiver runs in the data directory).
  assert.not.ok(
    (await readdir(cluster.pgdata)).some((n) => n.startsWith('s3')),
    'no ./s3:… directory',
  );
  // A base backup for the wal-fetch test at the end: -X none, so recovery needs the bucket's WAL
  // (pg_basebackup waits until its last segment is archived, through the same archive_command).
  baseDir = path.join(root, 'base');
  execFileSync('runuser', [
    '-u',
    'postgres',
    '--',
    path.join(PG_BINDIR, 'pg_basebackup'),
    '-h',
    cluster.socketDir,
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    '-D',
    baseDir,
    '-X',
    'none',
    '-c',
    'fast',
  ]);
});

test('--print-archive-command for an s3:// catalog: PostgreSQL archives through the worker, the client rarely runs', async () => {
  const r = await pgbk(['wal-push', '--print-archive-command', '--pgdata', cluster.pgdata, 'main']);
  assert.is(r.code, 0, r.stderr);
  const printed = r.stdout.trim();
  assert.match(printed, / wal-push --config \S+pgbk\.yaml --worker main %p$/);
  configs.push(configPath);
  key = localWorkerKey(configPath, 'main', cluster.pgdata);
  // Count the runs of the real client: wrap the exec of the fallback.
  const dir = await tempDir('pgbk-s3count-');
  const counter = path.join(dir, 'count.sh');
  const runs = path.join(dir, 'runs');
  await writeFile(counter, `#!/bin/sh\necho "$*" >> ${runs}\nexec "$@"\n`, { mode: 0o755 });
  await writeFile(runs, '');
  await chownToPostgres(dir);
  const counted = printed.replace(' exec /', ` exec ${counter} /`);
  await cluster.sql(`ALTER SYSTEM SET archive_command = '${counted.replace(/'/g, "''")}'`);
  await cluster.sql('SELECT pg_reload_conf()');
  const before = await archiverStats();
  await switchSegments(12);
  assert.equal(await waitNoBacklog(90_000), [], await logText(key));
  const after = await archiverStats();
  const archivedNow = after.archived - before.archived;
  assert.ok(archivedNow >= 12, `only ${archivedNow} archived`);
  assert.is(after.failed - before.failed, 0, `archive failures:\n${await logText(key)}\n${cluster.logTail(20)}`);
  await assertContiguous(after.last);
  assert.match(await logText(key), new RegExp(`archiving into s3://${s3.bucket}/pgbk/main; pushing main from `));
  const clientRuns = (await readFile(runs, 'utf8')).split('\n').filter((l) => l !== '').length;
  assert.ok(clientRuns <= archivedNow / 2, `the client ran ${clientRuns} times for ${archivedNow} files`);
  await cluster.sql(`ALTER SYSTEM SET archive_command = '${printed.replace(/'/g, "''")}'`);
  await cluster.sql('SELECT pg_reload_conf()');
  await rm(dir, { recursive: true, force: true });
});

test('a conflicting segment (same name, other content) is refused non-zero and quarantined in the bucket once; the archived object is unchanged', async () => {
  const segs = (await listArchivedWal(s3.url, 'main')).segments;
  const name = segs[segs.length - 1]!;
  const repo = await repositoryOf(s3.url);
  const storedKey = catalogKeys.wal('main', name, 'zstd');
  const storedBefore = await repo.get(storedKey);
  assert.ok(storedBefore !== undefined, storedKey);
  const fake = await tempDir('pgbk-s3conflict-');
  fakeDirs.push(fake);
  await mkdir(path.join(fake, 'pg_wal'));
  const bytes = Buffer.from(await readArchivedWal(s3.url, 'main', name));
  const at = 1024 * 1024 + 17;
  bytes[at] = (bytes[at]! ^ 0xff) & 0xff;
  await writeFile(path.join(fake, 'pg_wal', name), bytes);
  await chownToPostgres(fake);
  const push = () => pgbk(['wal-push', '--worker', 'main', `pg_wal/${name}`], { cwd: fake });
  const r = await push();
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /an archived file with this name and different content exists/);
  assert.equal(await repo.get(storedKey), storedBefore, 'archived object unchanged');
  const copies = (await quarantinedNames(s3.url, 'main')).filter((n) => n.startsWith(`${name}.`));
  assert.is(copies.length, 1, copies.join(' '));
  assert.equal(await repo.get(`${catalogKeys.errors('main')}${copies[0]}`), bytes, 'the quarantined copy is the refused content');
  // PostgreSQL retries: refused again, still one copy.
  const again = await push();
  assert.is(again.code, 1, again.stderr);
  assert.is((await quarantinedNames(s3.url, 'main')).filter((n) => n.startsWith(`${name}.`)).length, 1);
  // The plain command refuses it the same way.
  const plain = await pgbk(['wal-push', 'main', `pg_wal/${name}`], { cwd: fake });
  assert.is(plain.code, 1, plain.stderr);
  assert.match(plain.stderr, /different content exists/);
  assert.equal(await repo.get(storedKey), storedBefore);
});

test('a backlog pushed ahead into the bucket: one listing per log directory instead of a HEAD per compression kind per segment; every PUT conditional, signed with the sha256 it records', async () => {
  const names = (await listArchivedWal(s3.url, 'main')).segments.slice(0, 8);
  assert.is(names.length, 8);
  const fake = await tempDir('pgbk-s3batch-');
  fakeDirs.push(fake);
  await mkdir(path.join(fake, 'pg_wal', 'archive_status'), { recursive: true });
  for (const n of names) await writeFile(path.join(fake, 'pg_wal', n), await readArchivedWal(s3.url, 'main', n));
  for (const n of names) await writeFile(path.join(fake, 'pg_wal', 'archive_status', `${n}.ready`), '');
  await chownToPostgres(fake);
  const proxy = await recordingProxy(gw.port);
  const other = await gw.bucket('pgbk/');
  registerS3Catalog(other);
  const config = path.join(root, 'batch.yaml');
  await writeConfig(config, other.url, `{ endpoint: "${proxy.endpoint}" }`, cluster.conninfo);
  configs.push(config);
  try {
    // The archiver's first call starts the worker, which pushes every .ready segment ahead.
    for (const n of names) {
      const r = await pgbk(['wal-push', '--worker', 'main', `pg_wal/${n}`], { cwd: fake, config });
      assert.is(r.code, 0, `${n}: ${r.stderr}\n${await logText(localWorkerKey(config, 'main', fake))}`);
    }
    const archived = await listArchivedWal(other.url, 'main');
    assert.equal(archived.segments, names);
    for (const n of names) assert.equal(await readArchivedWal(other.url, 'main', n), await readArchivedWal(s3.url, 'main', n), n);
    const walKey = /\/main\/wal\/[0-9A-F]{16}\/[0-9A-F]{24}/;
    const heads = proxy.seen.filter((r) => r.method === 'HEAD');
    assert.ok(heads.length <= 2, `${heads.length} HEADs for ${names.length} segments: ${heads.map((r) => r.path).join(' ')}`);
    const puts = proxy.seen.filter((r) => r.method === 'PUT' && walKey.test(r.path));
    assert.is(puts.length, names.length, puts.map((r) => r.path).join(' '));
    for (const p of puts) {
      assert.is(p.headers['if-none-match'], '*', `${p.path}: put-if-absent`);
      assert.is(p.headers['x-amz-content-sha256'], p.bodySha256, `${p.path}: the signed payload hash is the body's`);
      assert.is(p.headers['content-md5'], undefined);
    }
    const lists = proxy.seen.filter((r) => r.method === 'GET' && /[?&]list-type=2/.test(r.path) && /prefix=[^&]*wal%2F[0-9A-F]{16}%2F/.test(r.path));
    assert.ok(lists.length >= 1 && lists.length <= 4, `${lists.length} listings of the log directory`);
  } finally {
    await proxy.close();
  }
});

test('radosgw stopped while PostgreSQL archives: non-zero exits, PostgreSQL retries, nothing lost once it is back', async () => {
  const before = await archiverStats();
  await gw.stopGateway();
  let restarted = false;
  try {
    await switchSegments(3);
    // The archiver fails (the worker cannot store the segment) and keeps the .ready files.
    const t0 = Date.now();
    while ((await archiverStats()).failed === before.failed && Date.now() - t0 < 90_000) await new Promise((r) => setTimeout(r, 200));
    const during = await archiverStats();
    assert.ok(during.failed > before.failed, `no failed archive_command while radosgw was down\n${cluster.logTail(20)}`);
    assert.ok((await readyFiles()).length >= 1, 'segments still waiting');
    // The client, run by hand on a waiting segment, exits non-zero naming the endpoint.
    const waiting = (await readyFiles()).sort()[0]!.replace(/\.ready$/, '');
    const r = await pgbk(['wal-push', '--worker', 'main', `pg_wal/${waiting}`], { cwd: cluster.pgdata });
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach ${gw.endpoint.replace(/[.]/g, '\\.')}`));
    await gw.startGateway();
    restarted = true;
  } finally {
    if (!restarted) await gw.startGateway();
  }
  // New WAL wakes the archiver (it waits up to a minute after repeated failures).
  await switchSegments(1);
  assert.equal(await waitNoBacklog(120_000), [], `${await logText(key)}\n${cluster.logTail(20)}`);
  const after = await archiverStats();
  assert.ok(after.archived - before.archived >= 4, `${after.archived - before.archived} archived`);
  await assertContiguous(after.last);
});

test('wrong credentials, a missing bucket, a wrong endpoint: a clear error naming it, exit non-zero, nothing written', async () => {
  const segs = (await listArchivedWal(s3.url, 'main')).segments;
  const name = segs[segs.length - 1]!;
  const fake = await tempDir('pgbk-s3bad-');
  fakeDirs.push(fake);
  await mkdir(path.join(fake, 'pg_wal'));
  await writeFile(path.join(fake, 'pg_wal', name), await readArchivedWal(s3.url, 'main', name));
  await chownToPostgres(fake);
  const other = await gw.bucket('pgbk/');
  const deadPort = await freePort();
  const cases = [
    {
      what: 'wrong credentials',
      catalog: other.url,
      s3: `{ endpoint: "${gw.endpoint}", profile: ${WRONG_PROFILE} }`,
      error: new RegExp(`refused the credentials \\(SignatureDoesNotMatch\\) for bucket ${other.bucket}`),
    },
    {
      what: 'a missing bucket',
      catalog: 's3://pgbk-no-such-bucket/pgbk',
      s3: `{ endpoint: "${gw.endpoint}" }`,
      error: /bucket pgbk-no-such-bucket does not exist at http:\/\/127\.0\.0\.1:\d+/,
    },
    {
      what: 'a wrong endpoint',
      catalog: other.url,
      s3: `{ endpoint: "http://127.0.0.1:${deadPort}" }`,
      error: new RegExp(`cannot reach http://127\\.0\\.0\\.1:${deadPort} \\(ECONNREFUSED\\)`),
    },
  ];
  // The three cases side by side (each its own config, so its own worker key): each run mostly
  // waits for the S3 client to give up, and one after another they took ~25 s.
  await Promise.all(
    cases.map(async (c, i) => {
      const config = path.join(root, `bad-${i}.yaml`);
      await writeConfig(config, c.catalog, c.s3, cluster.conninfo);
      configs.push(config);
      for (const mode of [
        ['wal-push', 'main'],
        ['wal-push', '--worker', 'main'],
      ]) {
        const r = await pgbk([...mode, `pg_wal/${name}`], { cwd: fake, config });
        assert.is(r.code, 1, `${c.what} (${mode.join(' ')}): ${r.stderr}`);
        assert.match(r.stderr, c.error, `${c.what} (${mode.join(' ')}): ${r.stderr}`);
        assert.not.match(r.stderr, /PGBKTESTSECRET|not-the-secret/, 'no secret printed');
      }
    }),
  );
  assert.equal(await bucketKeys(other), [], 'nothing written to the bucket');
  assert.equal((await readdir(fake)).sort(), ['pg_wal'], 'nothing written locally');
});

test('check on the s3:// catalog: bucket, credentials, write/read/delete probe, clock, WAL arrival through the bucket', async () => {
  const r = await pgbk(['check', '--json', 'main']);
  const report = JSON.parse(r.stdout) as { servers: { server: string; checks: { name: string; ok: boolean; detail: string }[] }[] };
  const checks = new Map(report.servers[0]!.checks.map((c) => [c.name, c]));
  const ok = (name: string, re: RegExp): void => {
    const c = checks.get(name);
    assert.ok(c?.ok === true, `${name}: ${JSON.stringify(c)}\n${r.stdout}`);
    assert.match(c!.detail, re, name);
  };
  ok('catalog', new RegExp(`s3://${s3.bucket}/pgbk/main: reachable, credentials accepted, write/read/delete probe ok`));
  ok('clock', /within \d+s of the object store's \(http:\/\/127\.0\.0\.1:\d+\)/);
  ok('archive_command', /wal-push --config .* --worker main %p/);
  ok('wal arrival', /is archived in this catalog/);
  // The conflict of the test above is reported from the bucket's errors/.
  const errors = checks.get('errors/');
  assert.ok(errors?.ok === false, JSON.stringify(errors));
  assert.match(errors!.detail, new RegExp(`1 quarantined file in s3://${s3.bucket}/pgbk/main/errors: [0-9A-F]{24}\\.`));
  assert.is(r.code, 1, 'the quarantined file fails check');
  // No probe object is left behind.
  assert.not.ok(
    (await bucketKeys(s3)).some((k) => k.includes('pgbk-check-')),
    'probe removed',
  );
  // Wrong credentials: one clear failed check naming them, not a crash.
  const config = path.join(root, 'check-wrong.yaml');
  await writeConfig(config, s3.url, `{ endpoint: "${gw.endpoint}", profile: ${WRONG_PROFILE} }`, cluster.conninfo);
  const bad = await pgbk(['check', '--json', 'main'], { config });
  assert.is(bad.code, 1, bad.stderr);
  const badChecks = (JSON.parse(bad.stdout) as typeof report).servers[0]!.checks;
  const cat = badChecks.find((c) => c.name === 'catalog');
  assert.ok(cat?.ok === false, bad.stdout);
  assert.match(cat!.detail, /refused the credentials \(SignatureDoesNotMatch\)/);
});

test('wal-fetch reads the bucket with prefetch: a base backup recovers to the newest archived rows', async () => {
  await cluster.sql("CREATE TABLE marks AS SELECT g AS id, 'row ' || g AS note FROM generate_series(1, 777) g");
  await switchSegments(6);
  assert.equal(await waitNoBacklog(90_000), [], await logText(key));
  const last = (await archiverStats()).last;
  // restore_command: the shell fast path in front of `pgbk wal-fetch` (as pgbk restore writes it).
  const parts = { node: process.execPath, cli: CLI, configPath, server: 'main' };
  await writeFile(
    path.join(baseDir, 'postgresql.auto.conf'),
    `restore_command = ${quoteConfValue(buildFastRestoreCommand(parts))}\nrecovery_end_command = ${quoteConfValue(buildSpoolCleanupCommand(parts))}\narchive_mode = off\n`,
  );
  await writeFile(path.join(baseDir, 'recovery.signal'), '');
  restored = await startClusterOn(baseDir, { wait: false });
  await waitForQuery(restored, 'SELECT pg_is_in_recovery()', 'f', 180_000);
  assert.is(await restored.sql('SELECT count(*) FROM marks'), '777');
  const log = restored.logTail(400);
  // Each segment either restored to %p or placed in pg_wal by the prefetch worker (fast-path.ts).
  assert.ok(
    log.includes(`restored log file "${last}" from archive`) || log.includes(`${last} prefetched into pg_wal`),
    `${last} not restored from the bucket\n${log}`,
  );
  const restoredCount = (log.match(/restored log file "[0-9A-F]{24}" from archive|pgbk wal-fetch: [0-9A-F]{24} prefetched into pg_wal/g) ?? []).length;
  const fromNode = (log.match(/served from the archive \(not spooled\)/g) ?? []).length;
  assert.ok(restoredCount >= 20, `${restoredCount} segments restored`);
  assert.ok(fromNode <= restoredCount / 2, `${fromNode} of ${restoredCount} segments missed the prefetched spool\n${log}`);
  // A name the bucket does not have ends recovery (exit 1), not a failure.
  const miss = await pgbk(['wal-fetch', 'main', '0000000100000000000000FE', path.join(root, 'miss')]);
  assert.is(miss.code, 1, miss.stderr);
  // A server the bucket holds nothing for stops recovery (255), naming the catalog.
  const other = path.join(root, 'fetch-other.yaml');
  await writeFile(other, `catalog: s3://${s3.bucket}/elsewhere/\ns3: { endpoint: "${gw.endpoint}" }\nservers:\n  main:\n    retention: { redundancy: 1 }\n`);
  await chownToPostgres(other);
  const none = await pgbk(['wal-fetch', 'main', last, path.join(root, 'miss')], { config: other });
  assert.is(none.code, 255, none.stderr);
  assert.match(none.stderr, /the catalog holds nothing for server main \(no server\.json\)/);
});

test("apply archives the spool's incoming/ (a plain cp archive_command) into the bucket", async () => {
  // The push worker would archive the new segments itself (it pushes every .ready file): stop it.
  for (const pid of new Set([...(await logText(key)).matchAll(/wal-push-worker\[(\d+)\]/g)].map((m) => Number(m[1])))) {
    if (alive(pid)) process.kill(pid, 'SIGTERM');
  }
  const incoming = path.join(root, 'spool', 'main', 'incoming');
  await mkdir(incoming, { recursive: true, mode: 0o770 });
  await chownToPostgres(path.join(root, 'spool'));
  const cp = `test ! -f ${incoming}/%f && cp %p ${incoming}/.%f.tmp && mv ${incoming}/.%f.tmp ${incoming}/%f`;
  await cluster.sql(`ALTER SYSTEM SET archive_command = '${cp}'`);
  await cluster.sql('SELECT pg_reload_conf()');
  await switchSegments(3);
  assert.equal(await waitNoBacklog(60_000), [], cluster.logTail(20));
  const waiting = (await readdir(incoming)).filter((n) => /^[0-9A-F]{24}$/.test(n));
  assert.ok(waiting.length >= 3, `incoming/: ${waiting.join(' ')}`);
  const r = await pgbk(['apply']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`archive-wal\\s+${waiting.length} segments`));
  assert.equal(
    (await readdir(incoming)).filter((n) => /^[0-9A-F]{24}$/.test(n)),
    [],
    'incoming/ emptied',
  );
  await assertContiguous(waiting.sort()[waiting.length - 1]!);
});

test("apply prunes the bucket's WAL that no retained backup needs (a DONE record stands in for the backup side)", async () => {
  const before = (await listArchivedWal(s3.url, 'main')).segments;
  assert.ok(before.length >= 20, `${before.length} archived`);
  const keep = before[Math.floor(before.length / 2)]!;
  // The backup side (branch s3-backup) writes backups; its record is all pruning reads.
  const sysid = await cluster.sql('SELECT system_identifier FROM pg_control_system()');
  const id = '20261201T030000Z';
  await writeBackupRecord(s3.url, { ...backup(id, { beginWal: keep, endWal: keep, systemIdentifier: sysid, pgVersion: 150000 }), server: 'main' });
  const r = await pgbk(['apply']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const older = before.filter((n) => n < keep);
  assert.match(r.stdout, new RegExp(`prune-wal\\s+${older.length} segments`));
  const after = (await listArchivedWal(s3.url, 'main')).segments;
  assert.equal(
    after,
    before.filter((n) => n >= keep),
    'exactly the segments before the backup are gone',
  );
  // Their objects are gone from the bucket, not just from the listing.
  assert.not.ok(
    (await bucketKeys(s3)).some((k) => older.some((n) => k.includes(n))),
    'no object of a pruned segment left',
  );
});

test.run();
