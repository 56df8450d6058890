/**
 * Point-in-time restore, proven by PostgreSQL 15 itself: one source cluster archives through
 * `pgbk wal-push` into a catalog, `pgbk backup` takes one base backup, rows are written in committed
 * steps while their time, LSN, xid and a named restore point are recorded; then every scenario runs
 * `pgbk restore` into a new directory, starts PostgreSQL on it (replaying WAL through
 * `pgbk wal-fetch`) and asserts exactly which rows exist.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { listArchivedWal } from '../../../src/catalog/wal-archive.js';
import { readBackups } from '../../../src/catalog/backups.js';
import { splitShellWords } from '../../../src/restore/archive-command.js';
import { chownToPostgres, isAlive, PG_BINDIR, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const CLI = path.join(REPO, 'dist', 'src', 'cli.js');
const SERVER = 'src';
const FILLER_SEGMENTS = 24;

interface Step {
  readonly step: number;
  readonly time: string;
  readonly lsn: string;
  readonly xid: string;
}

interface World {
  root: string;
  catalog: string;
  config: string;
  source: TestCluster;
  backupId: string;
  steps: Step[];
  beforeBackupTime: string;
  restorePointAfter: number;
  tablespaceOid: string;
}

let world: World | undefined;
let catalogDir = '';
const W = (): World => {
  if (world === undefined) throw new Error('setup did not run');
  return world;
};

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function pgbk(args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function waitArchived(name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const wal = await listArchivedWal(catalogDir, SERVER);
    if (wal.segments.includes(name) || wal.histories.includes(name)) return;
    if (Date.now() > deadline) throw new Error(`${name} was not archived within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Switch to a new segment and wait until the one holding everything so far is archived. */
async function switchAndArchive(c: TestCluster): Promise<void> {
  const name = await c.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
  await c.sql('SELECT pg_switch_wal()');
  await waitArchived(name);
}

async function writeStep(c: TestCluster, step: number): Promise<Step> {
  const xid = await c.sql(`INSERT INTO t VALUES (${step}, 'step ${step}') RETURNING txid_current()`);
  // The insert position: pg_current_wal_lsn() is the write position, which lags behind commits
  // with synchronous_commit = off (the test clusters' setting).
  const lsn = await c.sql('SELECT pg_current_wal_insert_lsn()');
  const time = await c.sql(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
  await sleep(30); // commit timestamps of consecutive steps must differ from the recorded time
  return { step, time, lsn, xid };
}

async function rows(c: TestCluster): Promise<string> {
  return c.sql(`SELECT coalesce(string_agg(step::text, ',' ORDER BY step), '') FROM t`);
}

test.before(async () => {
  try {
    await setup();
  } catch (err) {
    // uvu does not report a failing before hook: say why every test will fail.
    process.stderr.write(`setup failed: ${(err as Error).stack ?? String(err)}\n`);
    throw err;
  }
});

async function setup(): Promise<void> {
  const root = await tempDir('pgbk-pitr-');
  const catalog = path.join(root, 'catalog');
  catalogDir = catalog;
  const config = path.join(root, 'pgbk.yaml');
  const tsDir = path.join(root, 'ts');
  await mkdir(catalog);
  await mkdir(tsDir);
  await chownToPostgres(catalog);
  await chownToPostgres(tsDir);
  const archiveCommand = `${process.execPath} ${CLI} wal-push --config ${config} ${SERVER} %p`;
  const source = await startCluster({ archiveCommand, conf: { wal_keep_size: '0', max_wal_size: '64MB' } });
  await writeFile(
    config,
    [
      `catalog: ${catalog}`,
      'servers:',
      `  ${SERVER}:`,
      `    connection: "host=${source.socketDir} port=${source.port} user=postgres dbname=postgres"`,
      '    retention: { redundancy: 2 }',
      '',
    ].join('\n'),
  );
  await chmod(config, 0o644);
  await source.sql(`CREATE TABLESPACE ts LOCATION '${tsDir}'`);
  await source.sql('CREATE TABLE t (step int PRIMARY KEY, note text)');
  await source.sql('CREATE TABLE tt (x int) TABLESPACE ts');
  await source.sql('INSERT INTO tt VALUES (42)');
  await source.sql(`INSERT INTO t VALUES (0, 'before the backup')`);
  await switchAndArchive(source);
  const beforeBackupTime = new Date().toISOString();
  await sleep(1100); // backup ids are per second; the backup must end after beforeBackupTime

  const b = await pgbk(['backup', SERVER, '--config', config]);
  assert.is(b.code, 0, `pgbk backup failed: ${b.stderr}`);
  const backups = (await readBackups(catalog, SERVER)).filter((x) => x.status === 'DONE');
  assert.is(backups.length, 1, `expected one DONE backup: ${b.stdout}${b.stderr}`);
  const tablespaceOid = await source.sql(`SELECT oid FROM pg_tablespace WHERE spcname = 'ts'`);

  const steps: Step[] = [];
  // Segment boundaries between steps: the archive holds several segments after the backup, so
  // one can go missing "in the middle".
  for (let i = 1; i <= 2; i++) steps.push(await writeStep(source, i));
  await source.sql('SELECT pg_switch_wal()');
  steps.push(await writeStep(source, 3));
  await source.sql(`SELECT pg_create_restore_point('after_step_3')`);
  await source.sql('SELECT pg_switch_wal()');
  for (let i = 4; i <= 5; i++) steps.push(await writeStep(source, i));
  // Enough segments after the last step that a full replay shows whether restore_command's shell
  // fast path serves them (and not one Node start per segment).
  // One psql for all of them: each INSERT writes WAL, so each pg_switch_wal() closes a segment.
  await source.sql('CREATE TABLE filler (x int)');
  await source.sql(
    `DO $$ BEGIN FOR i IN 1..${FILLER_SEGMENTS} LOOP INSERT INTO filler SELECT generate_series(1, 2000); PERFORM pg_switch_wal(); END LOOP; END $$`,
  );
  await switchAndArchive(source);
  world = {
    root,
    catalog,
    config,
    source,
    backupId: backups[0]!.id,
    steps,
    beforeBackupTime,
    restorePointAfter: 3,
    tablespaceOid,
  };
}

test.after(async () => {
  if (world === undefined) return;
  await world.source.destroy();
  await rm(world.root, { recursive: true, force: true });
});

const step = (n: number): Step => {
  const s = W().steps.find((x) => x.step === n);
  if (s === undefined) throw new Error(`no step ${n}`);
  return s;
};

interface Restored {
  readonly dir: string;
  readonly summary: Record<string, unknown>;
}

async function restore(name: string, args: readonly string[]): Promise<Restored> {
  const dir = path.join(W().root, `restore-${name}`);
  const r = await pgbk(['restore', SERVER, '--config', W().config, '--target-dir', dir, '--json', ...args]);
  assert.is(r.code, 0, `pgbk restore ${args.join(' ')} failed:\n${r.stderr}`);
  const summary = JSON.parse(r.stdout) as Record<string, unknown>;
  // The JSON envelope every command shares (README "JSON output").
  assert.is(summary['formatVersion'], '1.0');
  assert.is(summary['command'], 'restore');
  return { dir, summary };
}

/** Start PostgreSQL on a restored directory, wait until recovery promoted, return the rows. */
async function startAndRead(dir: string, archive = false): Promise<{ cluster: TestCluster; rows: string }> {
  const cluster = await startClusterOn(dir, { conf: archive ? {} : { archive_mode: 'off' } });
  await waitForQuery(cluster, 'SELECT pg_is_in_recovery()', 'f', 90_000);
  return { cluster, rows: await rows(cluster) };
}

async function scenario(
  name: string,
  args: readonly string[],
  expected: string,
  check?: (c: TestCluster, r: Restored) => Promise<void>,
  archive = false,
): Promise<void> {
  const r = await restore(name, [...args, ...(args.length > 0 && !args.includes('--target-timeline') ? ['--target-action', 'promote'] : [])]);
  assert.is(r.summary['backupId'], W().backupId);
  // Each scenario's target is in the archived WAL: no false warning that it is not.
  assert.not.match(JSON.stringify(r.summary['warnings'] ?? []), /archived WAL ends before target/, name);
  const { cluster, rows: got } = await startAndRead(r.dir, archive);
  try {
    assert.is(got, expected, `${name}: rows after recovery\n${cluster.logTail(15)}`);
    if (check !== undefined) await check(cluster, r);
  } finally {
    await cluster.destroy();
    await rm(r.dir, { recursive: true, force: true });
    await rm(`${r.dir}_tablespaces`, { recursive: true, force: true });
  }
}

test('restore to a time: rows committed up to it, not after', async () => {
  await scenario('time', ['--target-time', step(2).time], '0,1,2');
});

test('a target the archived WAL never reaches is said before PostgreSQL would stop with "recovery ended before configured recovery target was reached"', async () => {
  const r = await restore('unreached', ['--target-name', 'no_such_point']);
  try {
    const warnings = r.summary['warnings'] as string[];
    assert.ok(
      warnings.some((w) =>
        /^the archived WAL ends before target restore point "?no_such_point"?.*recovery ended before configured recovery target was reached.*restore without a --target-\* option to replay all of it/.test(
          w,
        ),
      ),
      JSON.stringify(warnings),
    );
  } finally {
    await rm(r.dir, { recursive: true, force: true });
    await rm(`${r.dir}_tablespaces`, { recursive: true, force: true });
  }
});

test('restore to an LSN', async () => {
  await scenario('lsn', ['--target-lsn', step(3).lsn], '0,1,2,3');
});

test('restore to a transaction id (inclusive)', async () => {
  await scenario('xid', ['--target-xid', step(1).xid], '0,1');
});

test('restore to a named restore point', async () => {
  await scenario('name', ['--target-name', 'after_step_3'], '0,1,2,3');
});

test('restore to the end of the backup (immediate), with the full CRC32C manifest check', async () => {
  await scenario('immediate', ['--target-immediate', '--verify-checksums'], '0');
});

test('restore latest: all archived WAL, tablespace relocated and readable, spool removed; the promoted copy refuses to archive', async () => {
  const historiesBefore = (await listArchivedWal(catalogDir, SERVER)).histories;
  await scenario(
    'latest',
    [],
    '0,1,2,3,4,5',
    async (c, r) => {
      assert.is(await c.sql('SELECT x FROM tt'), '42');
      const loc = await c.sql(`SELECT pg_tablespace_location(${W().tablespaceOid})`);
      assert.is(loc, path.join(`${r.dir}_tablespaces`, W().tablespaceOid));
      const conf = await readFile(path.join(r.dir, 'postgresql.auto.conf'), 'utf8');
      assert.match(conf, /restore_command = '.* wal-fetch --config .* src %f %p'/);
      assert.not.ok(existsSync(path.join(r.dir, '.pgbk-spool')), 'recovery_end_command removes the spool');
      const [b] = await readBackups(W().catalog, SERVER);
      assert.is(b?.status === 'DONE' ? b.inUse : undefined, undefined, 'the in-use mark is removed after the restore');
      // By default the copy refuses to archive (archive_command = 'false'), and the summary says so.
      const settings = r.summary['settings'] as { name: string; change: string; note: string }[];
      assert.match(settings.find((x) => x.name === 'archive_command')?.note ?? '', /^'false' \(the default\): once promoted, the copy keeps its WAL/);
      assert.equal(
        settings.map((x) => `${x.name} ${x.change}`),
        ['restore_command set', 'port kept', 'unix_socket_directories kept', 'archive_command set'],
      );
      // Started with the restored files' own settings (archive_mode on): the promoted copy's
      // archiver runs 'false' and fails, and its new timeline never reaches the catalog.
      await waitForQuery(c, 'SELECT failed_count > 0 FROM pg_stat_archiver', 't', 30_000);
      assert.is(await c.sql('SELECT archived_count FROM pg_stat_archiver'), '0');
      assert.equal((await listArchivedWal(catalogDir, SERVER)).histories, historiesBefore, 'no new timeline history archived by the copy');
    },
    true,
  );
});

/** Run a program to completion, its output into a file (pg_ctl's server child inherits its stdio). */
async function runLogged(argv: readonly string[], logFile: string): Promise<number> {
  const fh = await open(logFile, 'w');
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fh.fd, fh.fd], cwd: '/' });
      child.once('error', reject);
      child.once('exit', (code) => resolve(code ?? -1));
    });
  } finally {
    await fh.close();
  }
}

function psqlAt(socketDir: string, port: number, sql: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const bin = path.join(PG_BINDIR, 'psql');
    const child = spawn('runuser', ['-u', 'postgres', '--', bin, '-h', socketDir, '-p', String(port), '-d', 'postgres', '-XAtc', sql], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, out: out.trim() }));
  });
}

test('the start command the summary prints starts the copy beside the running source (--no-archive)', async () => {
  const dir = path.join(W().root, 'restore-start');
  const r = await pgbk([
    'restore',
    SERVER,
    '--config',
    W().config,
    '--target-dir',
    dir,
    '--target-time',
    step(2).time,
    '--target-action',
    'promote',
    '--no-archive',
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}settings: {2}restore_command: set with the recovery target/m, r.stdout);
  assert.match(r.stdout, /^ {13}port: kept from the backup \(\d+\)/m, r.stdout);
  assert.match(r.stdout, /^ {13}archive_mode: off \(restore --no-archive\): the copy archives nothing/m, r.stdout);
  const line = /^ {2}start: {5}(.*)$/m.exec(r.stdout)?.[1];
  assert.ok(line !== undefined, r.stdout);
  const argv = splitShellWords(line);
  assert.ok(argv !== undefined, line);
  assert.equal(argv.slice(0, 4), ['runuser', '-u', 'postgres', '--'], 'run as the data directory owner');
  const opts = argv[argv.indexOf('-o') + 1] ?? '';
  const m = /^-p (\d+) -k (\S+)$/.exec(opts);
  assert.ok(m !== null, opts);
  const port = Number(m[1]);
  const socketDir = m[2]!;
  assert.is.not(port, W().source.port);
  assert.ok(isAlive(W().source.pid), 'the source server is running');
  let pid: number | undefined;
  try {
    const log = path.join(W().root, 'restore-start.log');
    const code = await runLogged(argv, log);
    assert.is(code, 0, `the printed command starts PostgreSQL:\n${await readFile(log, 'utf8')}`);
    pid = Number((await readFile(path.join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const q = await psqlAt(socketDir, port, 'SELECT pg_is_in_recovery()');
      if (q.out === 'f') break;
      if (Date.now() > deadline) throw new Error(`the copy did not promote: ${q.out}`);
      await sleep(200);
    }
    const got = await psqlAt(socketDir, port, "SELECT coalesce(string_agg(step::text, ',' ORDER BY step), '') FROM t");
    assert.is(got.out, '0,1,2');
    assert.is((await psqlAt(socketDir, port, 'SHOW archive_mode')).out, 'off');
    assert.ok(isAlive(W().source.pid), 'the source server is still running');
  } finally {
    if (pid !== undefined && isAlive(pid)) {
      process.kill(pid, 'SIGINT');
      const deadline = Date.now() + 30_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(100);
      if (isAlive(pid)) process.kill(pid, 'SIGQUIT');
    }
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}_tablespaces`, { recursive: true, force: true });
  }
});

/** Run `fn` with the archived segment holding `s` taken out of the catalog, put back after. */
async function withoutSegmentOf(s: Step, fn: (name: string) => Promise<void>): Promise<void> {
  const name = await W().source.sql(`SELECT pg_walfile_name('${s.lsn}')`);
  const logDir = path.join(W().catalog, SERVER, 'wal', name.slice(0, 16));
  const stored = (await readdir(logDir)).find((f) => f.startsWith(name));
  assert.ok(stored, `stored file for ${name}`);
  const aside = path.join(W().root, `aside-${name}`);
  await rename(path.join(logDir, stored), aside);
  try {
    await fn(name);
  } finally {
    await rename(aside, path.join(logDir, stored));
  }
}

test('a target before the backup, or a missing segment, is refused before anything is written', async () => {
  const dir = path.join(W().root, 'restore-refused');
  const early = await pgbk(['restore', SERVER, '--config', W().config, '--target-dir', dir, '--target-time', W().beforeBackupTime]);
  assert.is(early.code, 1);
  assert.match(early.stderr, /before the end of the oldest backup/);
  assert.not.ok(existsSync(dir));

  // Take out a segment between the backup and the end of the archive.
  await withoutSegmentOf(step(3), async (name) => {
    const r = await pgbk(['restore', SERVER, '--config', W().config, '--target-dir', dir]);
    assert.is(r.code, 1);
    assert.match(r.stderr, new RegExp(`${name} is missing`));
    assert.not.ok(existsSync(dir), 'nothing written');
  });

  // A non-empty target is refused, and the refusal is the only news: the WAL scan that ran beside
  // the check reports nothing.
  const busy = path.join(W().root, 'restore-busy');
  await mkdir(busy);
  await writeFile(path.join(busy, 'keep.txt'), 'mine');
  const nonEmpty = await pgbk(['restore', SERVER, '--config', W().config, '--target-dir', busy]);
  assert.is(nonEmpty.code, 1);
  assert.match(nonEmpty.stderr, /--target-dir .*restore-busy is not empty \(1 entries\)/, nonEmpty.stderr);
  assert.not.match(nonEmpty.stderr, /checked \d+ WAL segments?/);
  assert.not.match(nonEmpty.stderr, /restoring backup/, 'nothing reads as if the restore had started');
  assert.equal(await readdir(busy), ['keep.txt']);
  await rm(busy, { recursive: true, force: true });
});

test('a time target before a hole in the archive restores when a commit after it lies before the hole; past the hole it is refused', async () => {
  // Step 3's segment goes missing; steps 1 and 2 are in the one before it, steps 4, 5 and the
  // filler behind it (session 17's DR walk-through F6: the first target was refused).
  await withoutSegmentOf(step(3), async (name) => {
    assert.is.not(name, await W().source.sql(`SELECT pg_walfile_name('${step(2).lsn}')`), 'test setup: steps 2 and 3 in different segments');
    // Every commit before the hole is older than step 3's time: PostgreSQL would reach the hole.
    const dir = path.join(W().root, 'restore-gap-refused');
    const refused = await pgbk(['restore', SERVER, '--config', W().config, '--target-dir', dir, '--target-time', step(3).time]);
    assert.is(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`lies in a gap of the WAL archive: segment ${name} is missing`));
    assert.not.ok(existsSync(dir), 'nothing written');
    // Step 2 committed after step 1's time, before the hole: recovery stops there; PostgreSQL proves it.
    const ok = path.join(W().root, 'restore-before-gap');
    const r = await pgbk(['restore', SERVER, '--config', W().config, '--target-dir', ok, '--target-time', step(1).time, '--target-action', 'promote']);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `segment ${name} is missing from the archive, but recovery stops before it: at the first commit after the target, LSN [0-9A-F]+/[0-9A-F]+ \\(committed [^)]+\\) in [0-9A-F]{24}`,
      ),
    );
    assert.not.match(r.stderr, /archived WAL ends before target/);
    const { cluster, rows: got } = await startAndRead(ok);
    try {
      assert.is(got, '0,1', cluster.logTail(20));
    } finally {
      await cluster.destroy();
      await rm(ok, { recursive: true, force: true });
      await rm(`${ok}_tablespaces`, { recursive: true, force: true });
    }
  });
});

test('a corrupt archived segment stops recovery with a clear error instead of promoting early', async () => {
  const name = await W().source.sql(`SELECT pg_walfile_name('${step(2).lsn}')`);
  const logDir = path.join(W().catalog, SERVER, 'wal', name.slice(0, 16));
  const stored = (await readdir(logDir)).find((f) => f.startsWith(name))!;
  const file = path.join(logDir, stored);
  const backup = path.join(W().root, 'pristine');
  await copyFile(file, backup);
  const r = await restore('corrupt', []);
  try {
    const bytes = await readFile(file);
    for (let i = 100; i < 140; i++) bytes[i] = bytes[i]! ^ 0xff;
    await writeFile(file, bytes);
    const cluster = await startClusterOn(r.dir, { conf: { archive_mode: 'off' }, wait: false });
    try {
      const deadline = Date.now() + 60_000;
      while (isAlive(cluster.pid) && Date.now() < deadline) await sleep(200);
      assert.not.ok(isAlive(cluster.pid), 'PostgreSQL must stop, not carry on');
      const log = cluster.logTail(60);
      assert.match(log, /pgbk wal-fetch: FATAL: .*corrupt/);
      assert.match(log, new RegExp(name));
      assert.not.match(log, /database system is ready to accept connections/);
      assert.not.match(log, /selected new timeline ID/);
    } finally {
      await cluster.destroy();
    }
  } finally {
    await copyFile(backup, file);
    // wal-fetch's prefetch worker may still be spooling the segments before the corrupt one
    // (it outlives PostgreSQL until it notices): retry while it writes into the directory.
    await rm(r.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    await rm(`${r.dir}_tablespaces`, { recursive: true, force: true });
  }
});

/** Segments PostgreSQL logged as restored, and how many of them the Node path served. */
function replayCounts(log: string): { restored: number; placed: number; viaNode: number; failedCheck: string[] } {
  const placed = (log.match(/pgbk wal-fetch: [0-9A-F]{24} prefetched into pg_wal/g) ?? []).length;
  return {
    // Restored to %p (PostgreSQL logs it), or placed in pg_wal by the prefetch worker (the fast path logs it).
    restored: (log.match(/restored log file "[0-9A-F]{24}" from archive/g) ?? []).length + placed,
    placed,
    viaNode: (log.match(/pgbk wal-fetch: [0-9A-F]{24} served from the archive/g) ?? []).length,
    failedCheck: [...log.matchAll(/spooled copy of ([0-9A-F]{24}) failed its check/g)].map((m) => m[1]!),
  };
}

test('replay uses the shell fast path: Node runs for a small fraction of the segments', async () => {
  const r = await restore('fast-path', []);
  try {
    const conf = await readFile(path.join(r.dir, 'postgresql.auto.conf'), 'utf8');
    assert.match(conf, /restore_command = 'n=0; h=; while :; do if \[ pg_wal\/%f -ef \.pgbk-spool\/%f\.link \]; .* exec .* wal-fetch --config .* src %f %p'/);
    const { cluster, rows: got } = await startAndRead(r.dir);
    try {
      assert.is(got, '0,1,2,3,4,5');
      const c = replayCounts(cluster.logTail(100_000));
      process.stderr.write(`  fast path: Node served ${c.viaNode} of ${c.restored} replayed segments, ${c.placed} read in place from pg_wal\n`);
      assert.ok(c.restored >= FILLER_SEGMENTS, `replayed ${c.restored} segments from the archive`);
      // The first segment always comes through Node (it starts the worker); a few more may while
      // the worker starts under load. One Node start per segment would be c.viaNode = c.restored.
      assert.ok(c.viaNode * 3 <= c.restored, `Node served ${c.viaNode} of ${c.restored} segments\n${cluster.logTail(60)}`);
      // The worker places segments in pg_wal (same file system as the spool here): most are read in place.
      assert.ok(c.placed * 2 >= c.restored, `${c.placed} of ${c.restored} segments were read in place from pg_wal\n${cluster.logTail(60)}`);
      assert.equal(c.failedCheck, []);
    } finally {
      await cluster.destroy();
    }
  } finally {
    await rm(r.dir, { recursive: true, force: true });
    await rm(`${r.dir}_tablespaces`, { recursive: true, force: true });
  }
});

test('segments placed in pg_wal survive a crash: paused at a target with the worker ahead, killed, restarted without the target, recovery replays to the end', async () => {
  const r = await restore('crash', ['--target-name', 'after_step_3', '--target-action', 'pause']);
  try {
    const spool = path.join(r.dir, '.pgbk-spool');
    const first = await startClusterOn(r.dir, { conf: { archive_mode: 'off' } });
    let placedAhead: string[] = [];
    try {
      await waitForQuery(first, 'SELECT pg_get_wal_replay_pause_state()', 'paused', 90_000);
      assert.is(await rows(first), '0,1,2,3');
      // Paused at the target, the worker has put the next segments into pg_wal already.
      const deadline = Date.now() + 20_000;
      while (placedAhead.length < 2 && Date.now() < deadline) {
        const names = existsSync(spool) ? await readdir(spool) : [];
        placedAhead = names.filter((n) => /^[0-9A-F]{24}\.link$/.test(n) && !names.includes(n.replace('.link', '.used'))).map((n) => n.slice(0, 24));
        await sleep(100);
      }
      assert.ok(placedAhead.length >= 2, `segments placed ahead of the pause: ${placedAhead.join(', ')}\n${first.logTail(30)}`);
      await first.stop('immediate');
    } finally {
      await first.destroy();
    }
    // The DBA drops the target and starts the server again: crash recovery from the last
    // restartpoint, then archive recovery on to the end of the archive.
    const conf = path.join(r.dir, 'postgresql.auto.conf');
    const kept = (await readFile(conf, 'utf8')).split('\n').filter((l) => !/^recovery_target/.test(l));
    await writeFile(conf, kept.join('\n'));
    const { cluster, rows: got } = await startAndRead(r.dir);
    try {
      assert.is(got, '0,1,2,3,4,5', `rows after the restart\n${cluster.logTail(40)}`);
      assert.is(await cluster.sql('SELECT count(*) FROM filler'), String(FILLER_SEGMENTS * 2000));
      const log = cluster.logTail(100_000);
      for (const name of placedAhead) {
        assert.ok(
          log.includes(`${name} prefetched into pg_wal`) || log.includes(`restored log file "${name}" from archive`),
          `${name} replayed after the restart\n${cluster.logTail(60)}`,
        );
      }
      assert.equal(replayCounts(log).failedCheck, []);
    } finally {
      await cluster.destroy();
    }
  } finally {
    await rm(r.dir, { recursive: true, force: true });
    await rm(`${r.dir}_tablespaces`, { recursive: true, force: true });
  }
});

test('a tampered spooled segment is never replayed: the fast path detects it and the archive answers', async () => {
  const r = await restore('tampered', []);
  try {
    const wal = r.summary['wal'] as { from: string };
    const first = wal.from;
    const second = `${first.slice(0, 16)}${(Number.parseInt(first.slice(16), 16) + 1).toString(16).toUpperCase().padStart(8, '0')}`;
    const later = await W().source.sql(`SELECT pg_walfile_name('${step(5).lsn}')`);
    // The spool as the worker would have left it (segment + sidecar from the real bytes), then
    // each data file replaced by another, valid segment of the same cluster: the most dangerous
    // kind of wrong WAL, which PostgreSQL itself would take for the end of WAL.
    const spool = path.join(r.dir, '.pgbk-spool');
    await mkdir(spool, { mode: 0o700 });
    const { putInSpool } = await import('../../../src/wal-fetch/spool.js');
    const { readArchivedWal } = await import('../../../src/catalog/wal-archive.js');
    for (const n of [first, second, later]) {
      await putInSpool(spool, n, await readArchivedWal(W().catalog, SERVER, n));
      await writeFile(path.join(spool, n), await readArchivedWal(W().catalog, SERVER, n === first ? later : first));
    }
    await chownToPostgres(spool);
    const { cluster, rows: got } = await startAndRead(r.dir);
    try {
      const log = cluster.logTail(100_000);
      assert.is(got, '0,1,2,3,4,5', `recovery replayed the right WAL to the end\n${cluster.logTail(40)}`);
      const c = replayCounts(log);
      assert.ok(c.failedCheck.includes(first), `the tampered copy of ${first} was detected: ${c.failedCheck.join(', ')}\n${cluster.logTail(40)}`);
    } finally {
      await cluster.destroy();
    }
  } finally {
    await rm(r.dir, { recursive: true, force: true });
    await rm(`${r.dir}_tablespaces`, { recursive: true, force: true });
  }
});

test('timeline 2: restore --keep-archiving + promote archives a new timeline into the same catalog; a later restore reaches a point on it', async () => {
  const first = await restore('tl-first', ['--target-lsn', step(3).lsn, '--target-action', 'promote', '--keep-archiving']);
  let tl2Lsn = '';
  {
    const { cluster, rows: got } = await startAndRead(first.dir, true);
    try {
      assert.is(got, '0,1,2,3');
      assert.is(await cluster.sql(`SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)`), '00000002');
      await waitArchived('00000002.history');
      await cluster.sql(`INSERT INTO t VALUES (100, 'on timeline 2')`);
      tl2Lsn = await cluster.sql('SELECT pg_current_wal_insert_lsn()');
      await sleep(30);
      await cluster.sql(`INSERT INTO t VALUES (101, 'later on timeline 2')`);
      await switchAndArchive(cluster);
    } finally {
      await cluster.destroy();
      await rm(first.dir, { recursive: true, force: true });
      await rm(`${first.dir}_tablespaces`, { recursive: true, force: true });
    }
  }
  const second = await restore('tl-second', ['--target-lsn', tl2Lsn, '--target-timeline', '2', '--target-action', 'promote']);
  assert.is(second.summary['targetTimeline'], 2);
  const { cluster, rows: got } = await startAndRead(second.dir);
  try {
    assert.is(got, '0,1,2,3,100', `timeline 2 rows\n${cluster.logTail(20)}`);
  } finally {
    await cluster.destroy();
    await rm(second.dir, { recursive: true, force: true });
    await rm(`${second.dir}_tablespaces`, { recursive: true, force: true });
  }
});

test.run();
