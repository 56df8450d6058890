/**
 * pgbk on an S3 catalog beside pgBackRest 2.45 on an S3 repository (issue 12 item 6), in one run
 * against the same radosgw (test/support/rgw.ts; pgBackRest reaches it over HTTPS only, with
 * repo1-storage-verify-tls=n and path-style URIs), on one PostgreSQL cluster both tools back up,
 * each into its own bucket:
 *
 *  - full backup of `pgbench -i -s PGBK_BENCH_S3_SCALE` (default 50): `pgbk backup main` (method
 *    basebackup streamed into a multipart upload, zstd) vs `pgbackrest backup --type=full
 *    --compress-type=zst --process-max=2`; PGBK_BENCH_S3_ROUNDS (default 3) interleaved rounds,
 *    the order alternating, medians of wall time, peak RSS and CPU (`/usr/bin/time -v`: the largest
 *    single process of the tool's tree);
 *  - WAL backlog drain of PGBK_BENCH_S3_SEGMENTS (default 200) real segments of this cluster, made
 *    once while archiving into a staging directory, then marked .ready at once in a copy of the
 *    data directory per tool and archived by an emulation of PostgreSQL's archiver (one
 *    archive_command after another, bench/wal-push-local.ts) from a cold start: pgbk's command is
 *    what `pgbk wal-push --print-archive-command` prints (shell fast path + worker); pgBackRest's
 *    is `archive-push --archive-async --process-max=2 --compress-type=zst --compress-level=1`
 *    (pgbk's WAL is zstd level 1 too). Each round drains into a fresh prefix, removed afterwards;
 *  - restore of the latest full into an empty directory: `pgbk restore main latest` vs
 *    `pgbackrest restore --process-max=2`, PGBK_BENCH_S3_ROUNDS interleaved rounds after all the
 *    backups and drains, each once the machine is idle again (restorePhase), medians; the first
 *    pgbk restore is started by PostgreSQL once (untimed) to show it is a startable data directory;
 *  - pgbk's peak RSS during a backup at two sizes: `pgbench -s PGBK_BENCH_S3_SMALL_SCALE` (default
 *    10, taken first) and the big one.
 *
 * Each round holds /tmp/pgbk-heavy.lock (bench/lock.ts) and releases it afterwards.
 * PGBK_BENCH_S3_HTTP=1 makes pgbk talk plain HTTP to the gateway (default: HTTPS with the gateway's
 * CA file, like pgBackRest's TLS but verified).
 */

import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openS3Repository } from '../src/catalog/s3/driver.js';
import type { S3RepositoryConfig } from '../src/config/resolved.js';
import { isSegmentName } from '../src/pg/wal-name.js';
import { localWorkerKey, runtimeDir } from '../src/wal-push/target.js';
import { CLI, runPgbk } from '../test/support/pgbk.js';
import { chownToPostgres, PG_BINDIR, startCluster, startClusterOn, tempDir, type TestCluster } from '../test/support/postgres.js';
import { RGW_ACCESS_KEY, RGW_SECRET_KEY, rgw, type TestRgw } from '../test/support/rgw.js';
import { withHeavyLock } from './lock.js';
import { runProcess, sleep } from './process.js';
import type { BenchResult } from './restore.js';
import { archiver, dataDir, markReady } from './wal-push-local.js';

const PGBACKREST = '/usr/bin/pgbackrest';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${raw}: expected a positive integer`);
  return n;
}

const SCALE = envInt('PGBK_BENCH_S3_SCALE', 50);
const SMALL_SCALE = envInt('PGBK_BENCH_S3_SMALL_SCALE', 10);
const ROUNDS = envInt('PGBK_BENCH_S3_ROUNDS', 3);
const SEGMENTS = envInt('PGBK_BENCH_S3_SEGMENTS', 200);
/**
 * PGBK_BENCH_S3_WARMUP (default 1, 0 for none): untimed rounds before the timed ones, of each
 * phase (backups and drains; restores). This machine kind is a VM whose host backs guest memory on
 * first touch (~13 µs per 4 KiB page, RESULTS "the first touch of a page"): whichever tool went
 * first paid for the memory radosgw's OSD, the worker and the restore target took for the first
 * time (session 15: the first restore 3.49 s with 4.97 s of CPU, then 1.89 and 1.22 s with 1.9 and
 * 1.6 s; the first drain 14.8 s, then 9.0 and 7.6 s).
 */
const WARMUP = process.env['PGBK_BENCH_S3_WARMUP'] === '0' ? 0 : envInt('PGBK_BENCH_S3_WARMUP', 1);
const HTTPS = process.env['PGBK_BENCH_S3_HTTP'] !== '1';
/** PGBK_BENCH_S3_PROFILE=1: pgbk's backups and restores log their phases (PGBK_SSH_PROFILE). */
const PROFILE = process.env['PGBK_BENCH_S3_PROFILE'] === '1';
const PGBR_LOG = process.env['PGBK_BENCH_S3_PGBR_LOG'] || undefined;
/** PGBK_BENCH_S3_ONLY=drain: only the WAL drain rounds (no backups, no restores, no pgbench -s SCALE). */
const DRAIN_ONLY = process.env['PGBK_BENCH_S3_ONLY'] === 'drain';
/**
 * PGBK_BENCH_S3_ONLY=rss: only pgbk's backups, PGBK_BENCH_S3_ROUNDS at each size (no pgBackRest,
 * no WAL, no drain, no restore): the two peak-RSS rows, medians, and the backup's time at each size.
 */
const RSS_ONLY = process.env['PGBK_BENCH_S3_ONLY'] === 'rss';
/**
 * PGBK_BENCH_S3_ONLY=restore: one full backup per tool (untimed), then only the restore rounds,
 * interleaved; PGBK_BENCH_S3_BEFORE_CLI=…/dist/src/cli.js restores with that build of pgbk too in
 * each round (before/after in the same run).
 */
const RESTORE_ONLY = process.env['PGBK_BENCH_S3_ONLY'] === 'restore';
const BEFORE_CLI = process.env['PGBK_BENCH_S3_BEFORE_CLI'] || undefined;
/** PGBK_BENCH_S3_CPU_PROF=DIR: the wal-push worker is CPU-profiled (cpu-prof-preload.ts), its profiles written into DIR. */
const CPU_PROF = process.env['PGBK_BENCH_S3_CPU_PROF'] || undefined;
/**
 * PGBK_BENCH_S3_BASE_CLI=…/dist/src/cli.js: each drain round also drains with that build of pgbk
 * (another checkout's, e.g. main's), in the same round beside this one and pgBackRest: a before/after
 * on the same segments, gateway and load.
 */
const BASE_CLI = process.env['PGBK_BENCH_S3_BASE_CLI'] || undefined;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function loadNote(): string {
  return `load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}

interface Measured {
  readonly seconds: number;
  readonly rssMb: number;
  readonly cpuS: number;
  /** Of cpuS, the kernel's share (page faults, copies into tmpfs, pipes, TLS sockets). */
  readonly sysS: number;
  /** Minor page faults of the tree (/usr/bin/time -v). */
  readonly minorFaults: number;
  readonly stderr: string;
}

/** Run under `/usr/bin/time -v`: wall seconds, peak RSS (MB, largest single process), user+sys CPU. */
async function measured(cmd: string, args: readonly string[], asPostgres = false, env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  const t0 = process.hrtime.bigint();
  const out = await runProcess('/usr/bin/time', ['-v', cmd, ...args], { asPostgres, env });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const num = (re: RegExp): number => Number(re.exec(out.stderr)?.[1] ?? 'NaN');
  return {
    seconds,
    rssMb: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
    cpuS: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
    sysS: num(/System time \(seconds\): ([\d.]+)/),
    minorFaults: num(/Minor \(reclaiming a frame\) page faults: (\d+)/),
    stderr: out.stderr,
  };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? Number.NaN) + (s[m] ?? Number.NaN)) / 2;
};
const list = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join('/');

interface Setup {
  readonly gw: TestRgw;
  readonly root: string;
  readonly cluster: TestCluster;
  readonly incoming: string;
  readonly pgbkConfig: string;
  readonly pgbkCatalog: S3RepositoryConfig;
  readonly pgbrConfig: string;
  readonly pgbrBucket: S3RepositoryConfig;
  readonly walBucket: S3RepositoryConfig;
  readonly tlsPort: number;
}

function s3Yaml(gw: TestRgw, spool: string): string {
  return HTTPS
    ? `{ endpoint: "${gw.httpsEndpoint}", region: us-east-1, pathStyle: true, tls: { caFile: "${gw.caFile}" }, spool: "${spool}" }`
    : `{ endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true, spool: "${spool}" }`;
}

async function writePgbkConfig(file: string, gw: TestRgw, url: string, spool: string, conninfo: string): Promise<void> {
  await writeFile(file, `catalog: ${url}\ns3: ${s3Yaml(gw, spool)}\nservers:\n  main:\n    connection: "${conninfo}"\n    retention: { redundancy: 10 }\n`, {
    mode: 0o644,
  });
}

async function pgbk(config: string, args: readonly string[]): Promise<string> {
  const r = await runPgbk(['--config', config, ...args]);
  if (r.code !== 0) throw new Error(`pgbk ${args.join(' ')}: exit ${String(r.code ?? r.signal)}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

function pgbrConfigText(s: { root: string; bucket: string; tlsPort: number; cluster: TestCluster }): string {
  return [
    '[global]',
    'repo1-type=s3',
    'repo1-path=/pgbackrest',
    `repo1-s3-bucket=${s.bucket}`,
    'repo1-s3-endpoint=127.0.0.1',
    `repo1-storage-port=${s.tlsPort}`,
    'repo1-s3-region=us-east-1',
    'repo1-s3-uri-style=path',
    'repo1-storage-verify-tls=n',
    `repo1-s3-key=${RGW_ACCESS_KEY}`,
    `repo1-s3-key-secret=${RGW_SECRET_KEY}`,
    `log-path=${PGBR_LOG ?? `${s.root}/pgbr-log`}`,
    `lock-path=${s.root}/pgbr-lock`,
    `spool-path=${s.root}/pgbr-spool`,
    'log-level-console=warn',
    // PGBK_BENCH_S3_PGBR_LOG=DIR: pgBackRest's detail log (ms timestamps) kept there, to see where its time goes.
    `log-level-file=${PGBR_LOG === undefined ? 'off' : 'detail'}`,
    'start-fast=y',
    // archive_command is pgbk's spool copy: pgBackRest has no archive of this cluster's WAL.
    'archive-check=n',
    'compress-type=zst',
    'process-max=2',
    '',
    '[main]',
    `pg1-path=${s.cluster.pgdata}`,
    `pg1-socket-path=${s.cluster.socketDir}`,
    `pg1-port=${s.cluster.port}`,
    'pg1-user=postgres',
    '',
  ].join('\n');
}

function pgbench(cluster: TestCluster, scale: number): Promise<unknown> {
  return runProcess(path.join(PG_BINDIR, 'pgbench'), [
    '-i',
    '-q',
    '-s',
    String(scale),
    '-h',
    cluster.socketDir,
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    'postgres',
  ]);
}

/** Archive what waits in the spool into the bucket (untimed), so the timed backup does only its copy. */
async function drainSpool(s: Setup): Promise<void> {
  await s.cluster.sql('SELECT pg_switch_wal()');
  await sleep(1000);
  await pgbk(s.pgbkConfig, ['apply']);
}

async function pgbkBackup(s: Setup): Promise<Measured> {
  await drainSpool(s);
  const m = await measured(process.execPath, [CLI, '--config', s.pgbkConfig, 'backup', 'main'], false, PROFILE ? { PGBK_SSH_PROFILE: '1' } : {});
  const shown = JSON.parse(await pgbk(s.pgbkConfig, ['show', 'main', 'latest', '--json'])) as { backup: { status: string; error?: string } };
  if (shown.backup.status !== 'DONE' && shown.backup.status !== 'WAITING_FOR_WAL')
    throw new Error(`pgbk backup: ${shown.backup.status} ${shown.backup.error ?? ''}`);
  return m;
}

function pgbrBackup(s: Setup): Promise<Measured> {
  return measured(PGBACKREST, [`--config=${s.pgbrConfig}`, '--stanza=main', 'backup', '--type=full'], true);
}

/**
 * Real WAL of this cluster: concurrent bulk UPDATEs of a quarter of pgbench_accounts and INSERTs of
 * md5 text rows (heap records, full-page images after checkpoints), archived by the cluster's
 * archive_command into the spool, then moved into `staging`.
 */
async function generateSegments(s: Setup, staging: string, want: number): Promise<string[]> {
  const segs = async (): Promise<string[]> => (await readdir(s.incoming)).filter(isSegmentName).sort();
  const already = new Set(await segs());
  const fresh = async (): Promise<string[]> => (await segs()).filter((n) => !already.has(n));
  await s.cluster.sql('CREATE TABLE IF NOT EXISTS bench_fill (id bigint, payload text)');
  // The bound is on working time (held lock), not on waiting for the lock: a run once failed with
  // 186 of 200 segments after other sessions' tests held the lock for minutes.
  let worked = 0;
  let round = 0;
  while ((await fresh()).length < want && worked < 900_000) {
    // One hold of the heavy lock per ~60 s of steps: the others' tests get their turn in between.
    await withHeavyLock(async () => {
      const t0 = Date.now();
      while ((await fresh()).length < want && Date.now() - t0 < 60_000) {
        await Promise.all([
          s.cluster.sql(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 4 = ${round % 4}`),
          s.cluster.sql(`INSERT INTO bench_fill SELECT g, md5(g::text) || repeat(md5((g * ${round + 1})::text), 4) FROM generate_series(1, 300000) g`),
        ]);
        round++;
      }
      worked += Date.now() - t0;
    });
    log(`WAL generation: ${(await fresh()).length}/${want} segments archived (${loadNote()})`);
  }
  await s.cluster.sql('SELECT pg_switch_wal()');
  // The archiver copies the last segments after the switch: wait (bounded) until enough are in.
  for (let i = 0; i < 60 && (await fresh()).length < want; i++) await sleep(1000);
  const chosen = (await fresh()).slice(0, want);
  if (chosen.length < want) throw new Error(`only ${chosen.length} of ${want} segments generated`);
  await mkdir(staging, { recursive: true });
  for (const n of chosen) await rename(path.join(s.incoming, n), path.join(staging, n));
  await s.cluster.sql('DROP TABLE bench_fill');
  return chosen;
}

async function emptyPrefix(cfg: S3RepositoryConfig, prefix: string): Promise<void> {
  const repo = await openS3Repository({ ...cfg, url: `s3://${cfg.bucket}/`, prefix: '' });
  try {
    await repo.deleteTree(prefix);
  } finally {
    repo.close();
  }
}

/** A round's name in paths and prefixes: warm-up rounds (negative) are w1, w2, … */
const roundTag = (round: number): string => (round < 0 ? `w${-round}` : String(round));

interface Drain {
  readonly seconds: number;
  readonly note: string;
  /** The wal-push worker's CPU (user + system, its threads included) per segment, ms; NaN if unknown. */
  readonly cpuMsPerSegment?: number;
  /** The worker's peak RSS (VmHWM), MB; NaN if unknown. */
  readonly rssMb?: number;
}

/** CPU seconds of a live process's threads, summed by thread name (comm), from /proc: where the CPU went. */
async function cpuByThread(pid: number): Promise<string> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const by = new Map<string, number>();
  for (const t of tasks) {
    const stat = await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8').catch(() => '');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f.length < 13) continue;
    const name = t === String(pid) ? 'main' : comm;
    by.set(name, (by.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
  }
  return [...by]
    .sort((a, b) => b[1] - a[1])
    .map(([n, s]) => `${n} ${s.toFixed(2)} s`)
    .join(', ');
}

/** user + system CPU seconds of a live process (its threads included), from /proc. */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return f.length < 13 ? Number.NaN : (Number(f[11]) + Number(f[12])) / 100;
}

/** Jiffies of the whole machine (all CPUs): total and idle (idle + iowait), from /proc/stat. */
async function machineJiffies(): Promise<{ total: number; idle: number }> {
  const f = ((await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: (f[3] ?? 0) + (f[4] ?? 0) };
}

/**
 * `drain` with what the machine did meanwhile: its idle share (CPU left unused: the drain waited on
 * something other than CPU) and radosgw's CPU per segment (the gateway shares the 2 cores).
 */
async function watched<T>(s: Setup, segments: number, drain: () => Promise<T>): Promise<{ value: T; note: string }> {
  const pid = s.gw.gatewayPid();
  const [m0, g0, c0] = [await machineJiffies(), pid === undefined ? Number.NaN : await cpuSecondsOf(pid), await cpuCensus()];
  const value = await drain();
  const [m1, g1, c1] = [await machineJiffies(), pid === undefined ? Number.NaN : await cpuSecondsOf(pid), await cpuCensus()];
  const idle = (100 * (m1.idle - m0.idle)) / Math.max(1, m1.total - m0.total);
  const busy = (((m1.total - m0.total - (m1.idle - m0.idle)) / CLOCK_TICKS) * 1000) / segments;
  const by = [...c1]
    .map(([k, v]) => [k, ((v - (c0.get(k) ?? 0)) * 1000) / segments] as const)
    .filter(([, ms]) => ms >= 0.5)
    .sort((a, b) => b[1] - a[1])
    .map(([k, ms]) => `${k} ${ms.toFixed(1)}`)
    .join(', ');
  return {
    value,
    note: `machine idle ${idle.toFixed(0)}%, radosgw CPU ${(((g1 - g0) * 1000) / segments).toFixed(0)} ms/segment; machine busy ${busy.toFixed(0)} ms/segment, of it (ms/segment) ${by}`,
  };
}

/** /proc/stat's unit (USER_HZ): 100 on Linux everywhere that matters. */
const CLOCK_TICKS = 100;

/**
 * CPU seconds so far of every live process on the machine, summed by command name, plus what this
 * process reaped (the archive_command shells and what they ran: sh, stat, sleep, pgBackRest's
 * foreground archive-push) and its own: where a drain's CPU went, tool by tool.
 */
async function cpuCensus(): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  for (const p of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(p)) continue;
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f.length < 15) continue;
    const own = (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
    if (Number(p) === process.pid) {
      by.set('bench (archiver)', own);
      by.set('archive_command processes', (Number(f[13]) + Number(f[14])) / CLOCK_TICKS);
      continue;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    by.set(comm, (by.get(comm) ?? 0) + own);
  }
  return by;
}

async function pgbkDrain(s: Setup, round: number, staging: string, names: readonly string[], cli?: string): Promise<Drain> {
  const tag = cli === undefined ? 'pgbk' : 'base';
  const dir = path.join(s.root, `drain-${tag}-${roundTag(round)}`);
  await mkdir(dir);
  const config = path.join(dir, 'pgbk.yaml');
  const prefix = `${tag}-wal-${roundTag(round)}/`;
  await writePgbkConfig(config, s.gw, `s3://${s.walBucket.bucket}/${prefix}`, path.join(dir, 'spool'), s.cluster.conninfo);
  const d = await dataDir(dir, 'pgdata', path.join(s.cluster.pgdata, 'global', 'pg_control'));
  // The archive_command names the CLI that printed it: the base build's runs the base build.
  const printArgs = ['--config', config, 'wal-push', '--print-archive-command', '--pgdata', d, 'main'];
  const template = (cli === undefined ? await pgbk(config, printArgs.slice(2)) : (await runProcess(process.execPath, [cli, ...printArgs])).stdout).trim();
  const key = localWorkerKey(config, 'main', d);
  const logFile = path.join(runtimeDir(), `walpush-${key}.log`);
  const savedOptions = process.env['NODE_OPTIONS'];
  // Inherited by the archiver's shells, so by the client that starts the worker, and the worker.
  if (CPU_PROF !== undefined) {
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: the worker starts its profiler from a preload.
    process.env['NODE_OPTIONS'] = `${savedOptions ?? ''} --import ${path.join(path.dirname(fileURLToPath(import.meta.url)), 'cpu-prof-preload.js')}`.trim();
    process.env['PGBK_BENCH_CPU_PROF_DIR'] = CPU_PROF;
  }
  try {
    await markReady(d, staging, names);
    const { value: drain, note: seen } = await watched(s, names.length, () => archiver(d, template, names));
    const text = await readFile(logFile, 'utf8').catch(() => '');
    const pid = Number(/wal-push-worker\[(\d+)\]/.exec(text)?.[1] ?? 0);
    const hwm = pid > 0 ? /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1] : undefined;
    // Its whole life: start-up (the SDK's import, ~0.3 s) included.
    const cpuMs = pid > 0 ? ((await cpuSecondsOf(pid)) * 1000) / names.length : Number.NaN;
    if (pid > 0) log(`worker CPU by thread: ${await cpuByThread(pid)}`);
    const rssMb = hwm === undefined ? Number.NaN : Number(hwm) / 1024;
    return {
      seconds: drain.total,
      cpuMsPerSegment: cpuMs,
      rssMb,
      note: `worker peak RSS ${Number.isNaN(rssMb) ? '?' : `${rssMb.toFixed(0)} MB`}, CPU ${cpuMs.toFixed(0)} ms/segment, ${seen}`,
    };
  } finally {
    if (savedOptions === undefined) delete process.env['NODE_OPTIONS'];
    else process.env['NODE_OPTIONS'] = savedOptions;
    const text = await readFile(logFile, 'utf8').catch(() => '');
    for (const pid of new Set([...text.matchAll(/wal-push-worker\[(\d+)\]/g)].map((m) => Number(m[1])))) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // exited already
      }
    }
    await rm(logFile, { force: true });
    await emptyPrefix(s.walBucket, prefix);
    await rm(dir, { recursive: true, force: true });
  }
}

async function pgbrDrain(s: Setup, round: number, staging: string, names: readonly string[]): Promise<Drain> {
  const dir = path.join(s.root, `drain-pgbr-${roundTag(round)}`);
  await mkdir(dir);
  const repoPath = `/pgbackrest-wal-${roundTag(round)}`;
  // Run as root, like the emulated archiver: its own lock, log and spool directories.
  const base = [`--config=${s.pgbrConfig}`, '--stanza=main', `--repo1-path=${repoPath}`, `--lock-path=${dir}/lock`, `--log-path=${dir}/log`];
  // stanza-create refuses --spool-path ("not valid for command"); archive-push needs it.
  await runProcess(PGBACKREST, [...base, 'stanza-create']);
  const common = [...base, `--spool-path=${dir}/spool`];
  const d = await dataDir(dir, 'pgdata', path.join(s.cluster.pgdata, 'global', 'pg_control'));
  const template = [
    PGBACKREST,
    ...common,
    `--pg1-path=${d}`,
    '--archive-async',
    '--process-max=2',
    '--compress-type=zst',
    '--compress-level=1',
    'archive-push',
    '%p',
  ].join(' ');
  try {
    await markReady(d, staging, names);
    const { value: drain, note } = await watched(s, names.length, () => archiver(d, template, names));
    return { seconds: drain.total, note };
  } finally {
    await emptyPrefix(s.pgbrBucket, `${repoPath.slice(1)}/`);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The benchmark's PostgreSQL under `root`: it archives with an atomic copy into the local spool's
 * incoming/ (s3.spool, server main), which the spool's owner, postgres, can write.
 */
export async function startSpoolCluster(root: string): Promise<{ spool: string; incoming: string; cluster: TestCluster }> {
  const spool = path.join(root, 'spool');
  const incoming = path.join(spool, 'main', 'incoming');
  await mkdir(incoming, { recursive: true, mode: 0o770 });
  await chownToPostgres(spool);
  const cluster = await startCluster({
    archiveCommand: `test ! -f ${incoming}/%f && cp %p ${incoming}/.%f.tmp && mv ${incoming}/.%f.tmp ${incoming}/%f`,
    conf: { max_wal_size: '4GB', checkpoint_timeout: '5min', wal_compression: 'off' },
  });
  return { spool, incoming, cluster };
}

async function setUp(root: string): Promise<Setup> {
  const gw = await rgw(); // first: it puts the credentials file into the environment children inherit
  const { spool, incoming, cluster } = await startSpoolCluster(root);
  const pgbkCatalog = await gw.bucket('pgbk/');
  const pgbrBucket = await gw.bucket('');
  const walBucket = await gw.bucket('');
  const pgbkConfig = path.join(root, 'pgbk.yaml');
  await writePgbkConfig(pgbkConfig, gw, pgbkCatalog.url, spool, cluster.conninfo);
  const tlsPort = Number(new URL(gw.httpsEndpoint).port);
  const pgbrConfig = path.join(root, 'pgbackrest.conf');
  await writeFile(pgbrConfig, pgbrConfigText({ root, bucket: pgbrBucket.bucket, tlsPort, cluster }), { mode: 0o640 });
  for (const d of ['pgbr-log', 'pgbr-lock', 'pgbr-spool']) await mkdir(path.join(root, d));
  for (const d of ['pgbr-log', 'pgbr-lock', 'pgbr-spool', 'pgbackrest.conf']) await chownToPostgres(path.join(root, d));
  return { gw, root, cluster, incoming, pgbkConfig, pgbkCatalog, pgbrConfig, pgbrBucket, walBucket, tlsPort };
}

/** Start PostgreSQL on a restored directory once (untimed): '' when it answered, else why not. */
async function startable(dir: string): Promise<string> {
  let c: TestCluster | undefined;
  try {
    c = await startClusterOn(dir);
    const n = await c.sql('SELECT count(*) FROM pgbench_branches');
    return n === String(SCALE) ? '' : `pgbench_branches has ${n} rows, expected ${SCALE}`;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' ');
  } finally {
    await c?.destroy().catch(() => undefined);
  }
}

/**
 * Wait (at most 30 s) until the machine is ≥ 85 % idle over one second: radosgw and its OSD have
 * finished what the drains left them (the deleted prefixes' objects) and the cluster's
 * checkpointer is quiet. Restores measured right after a drain varied 2× from round to round for
 * both tools (session 14); a restore is timed on a quiet gateway, as on a real object store.
 */
async function settle(): Promise<string> {
  const t0 = Date.now();
  let idle = 0;
  while (Date.now() - t0 < 30_000) {
    const a = await machineJiffies();
    await sleep(1000);
    const b = await machineJiffies();
    idle = (100 * (b.idle - a.idle)) / Math.max(1, b.total - a.total);
    if (idle >= 85) break;
  }
  return `settled ${((Date.now() - t0) / 1000).toFixed(0)} s, idle ${idle.toFixed(0)}%`;
}

type RestoreTool = 'pgbk' | 'pgbr' | 'before';

/**
 * PGBK_BENCH_S3_ROUNDS restore rounds of each tool's latest full backup, interleaved (the order
 * rotating), each round on a settled machine and in one hold of the heavy lock;
 * PGBK_BENCH_S3_BEFORE_CLI's build restores in each round too. The first pgbk restore is started by
 * PostgreSQL once (untimed).
 */
async function restorePhase(s: Setup): Promise<BenchResult> {
  const tools: RestoreTool[] = BEFORE_CLI === undefined ? ['pgbk', 'pgbr'] : ['pgbk', 'pgbr', 'before'];
  const runs: Record<RestoreTool, Measured[]> = { pgbk: [], pgbr: [], before: [] };
  let started = 'not tried';
  for (let round = -WARMUP; round < ROUNDS; round++) {
    const warm = round < 0;
    await withHeavyLock(async () => {
      const quiet = await settle();
      const order = tools.map((_, i) => tools[(((i + round) % tools.length) + tools.length) % tools.length]!);
      const line: string[] = [];
      for (const tool of order) {
        const target = path.join(s.root, `restore-${tool}`);
        let m: Measured;
        if (tool === 'pgbr') {
          await mkdir(target, { mode: 0o700 });
          await chownToPostgres(target);
          m = await measured(PGBACKREST, [`--config=${s.pgbrConfig}`, '--stanza=main', `--pg1-path=${target}`, 'restore', '--process-max=2'], true);
        } else {
          const cli = tool === 'before' ? BEFORE_CLI! : CLI;
          m = await measured(
            process.execPath,
            [cli, '--config', s.pgbkConfig, 'restore', 'main', 'latest', '--target-dir', target, '--no-archive'],
            false,
            PROFILE ? { PGBK_SSH_PROFILE: '1' } : {},
          );
          if (PROFILE)
            log(
              `${tool} restore profile:\n${m.stderr
                .split('\n')
                .filter((l) => l.includes('[profile]'))
                .join('\n')}`,
            );
        }
        if (!warm) runs[tool].push(m);
        line.push(
          `${tool} ${m.seconds.toFixed(2)} s CPU ${m.cpuS.toFixed(2)} s (sys ${m.sysS.toFixed(2)}, ${(m.minorFaults / 1000).toFixed(0)}k minor faults) ${m.rssMb.toFixed(0)} MB`,
        );
        if (round === -WARMUP && tool === 'pgbk') {
          const why = await startable(target);
          started = why === '' ? `PostgreSQL started on pgbk's restore and read pgbench_branches (${SCALE} rows)` : `pgbk's restore did NOT start: ${why}`;
          log(started);
        }
        await rm(target, { recursive: true, force: true });
      }
      log(`restore ${warm ? 'warm-up (untimed)' : `round ${round + 1}`} (${quiet}, ${loadNote()}): ${line.join(', ')}`);
    });
  }
  const med = (xs: readonly Measured[], f: (m: Measured) => number): number => median(xs.map(f));
  const secs = (t: RestoreTool): number[] => runs[t].map((m) => m.seconds);
  const pgbkS = median(secs('pgbk'));
  const pgbrS = median(secs('pgbr'));
  const before =
    BEFORE_CLI === undefined
      ? ''
      : `; before (${BEFORE_CLI}) ${list(secs('before'))} s, median ${median(secs('before')).toFixed(2)} s = ${(median(secs('before')) / pgbrS).toFixed(2)}×`;
  return {
    name: 's3 restore vs pgBackRest restore --process-max=2',
    pgbk_s: pgbkS,
    reference_s: pgbrS,
    ratio: pgbkS / pgbrS,
    note: `pgbk ${list(secs('pgbk'))} s, pgBackRest ${list(secs('pgbr'))} s${before}; peak RSS ${med(runs.pgbk, (m) => m.rssMb).toFixed(0)} vs ${med(runs.pgbr, (m) => m.rssMb).toFixed(0)} MB; CPU s ${med(runs.pgbk, (m) => m.cpuS).toFixed(2)} vs ${med(runs.pgbr, (m) => m.cpuS).toFixed(2)}; ${started}; median of ${ROUNDS} interleaved rounds after the backups and drains (${WARMUP} untimed before), each on a settled machine; ${HTTPS ? 'pgbk over HTTPS (caFile, verified)' : 'pgbk over HTTP'}, pgBackRest over HTTPS (verify-tls=n); ${loadNote()} at the end`,
  };
}

/** PGBK_BENCH_S3_ONLY=restore: one full backup per tool (untimed), then the restore phase alone. */
async function restoreOnly(s: Setup): Promise<BenchResult[]> {
  await withHeavyLock(async () => {
    log(`pgbench -i -s ${SCALE} … (${loadNote()})`);
    await pgbench(s.cluster, SCALE);
    await s.cluster.sql('CHECKPOINT');
    await drainSpool(s);
    await pgbkBackup(s);
    await pgbrBackup(s);
  });
  return [await restorePhase(s)];
}

export async function benchS3(): Promise<BenchResult[]> {
  if (!existsSync(PGBACKREST)) throw new Error(`${PGBACKREST} is missing: apt-get install -y pgbackrest (.ci/install)`);
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing (peak RSS): apt-get install time');
  const root = await tempDir('pgbk-bench-s3-');
  await chmod(root, 0o755);
  let s: Setup | undefined;
  try {
    // Set-up in one hold of the lock: the gateway, the cluster, pgbk's peak RSS at the small size,
    // the WAL for the drain (made on the small cluster, so that the big one stays a plain
    // pgbench -s SCALE), then the big cluster.
    const staging = path.join(root, 'staging');
    // Three holds (each well under the ~6 minutes one may keep it): the gateway, the cluster and
    // the small backup; the WAL (one hold per generation step); the big cluster.
    const { setup, small } = await withHeavyLock(async () => {
      log('starting radosgw and PostgreSQL …');
      const made = await setUp(root);
      s = made;
      log(`pgbench -i -s ${SMALL_SCALE} … (${loadNote()})`);
      await pgbench(made.cluster, SMALL_SCALE);
      await made.cluster.sql('CHECKPOINT');
      await runProcess(PGBACKREST, [`--config=${made.pgbrConfig}`, '--stanza=main', 'stanza-create'], { asPostgres: true });
      if (DRAIN_ONLY || RESTORE_ONLY) return { setup: made, small: undefined };
      const smalls: Measured[] = [];
      for (let i = 0; i < (RSS_ONLY ? ROUNDS : 1); i++) {
        const m = await pgbkBackup(made);
        log(`-s ${SMALL_SCALE}: pgbk backup ${m.seconds.toFixed(2)} s, peak RSS ${m.rssMb.toFixed(0)} MB (${loadNote()})`);
        smalls.push(m);
      }
      const m = smalls[0]!;
      return { setup: made, small: { ...m, seconds: median(smalls.map((x) => x.seconds)), rssMb: median(smalls.map((x) => x.rssMb)), all: smalls } };
    });
    if (RESTORE_ONLY) return await restoreOnly(setup);
    log(`generating ${SEGMENTS} WAL segments …`);
    const names = RSS_ONLY ? [] : await generateSegments(setup, staging, SEGMENTS);
    await withHeavyLock(async () => {
      if (DRAIN_ONLY) return;
      log(`pgbench -i -s ${SCALE} … (${loadNote()})`);
      await pgbench(setup.cluster, SCALE);
      await setup.cluster.sql('CHECKPOINT');
      await drainSpool(setup);
    });

    // One round per hold of the lock: a full backup each and a drain each, the order alternating
    // between rounds; then the restore rounds (restorePhase).
    const full: { pgbk: Measured; pgbr: Measured }[] = [];
    const drains: { pgbk: Drain; pgbr: Drain }[] = [];
    const baseDrains: Drain[] = [];
    const pair = async <T>(round: number, a: () => Promise<T>, b: () => Promise<T>): Promise<{ pgbk: T; pgbr: T }> => {
      if (round % 2 === 0) {
        const x = await a();
        return { pgbk: x, pgbr: await b() };
      }
      const y = await b();
      return { pgbk: await a(), pgbr: y };
    };
    // One drain per tool, logged with its speed ratio (used with and without the backup rounds).
    const drainRound = async (round: number): Promise<void> => {
      // With a base build: base, pgbk, pgBackRest in even rounds; pgBackRest, pgbk, base in odd ones.
      const base = (): Promise<Drain> => pgbkDrain(setup, round, staging, names, BASE_CLI);
      const b0 = BASE_CLI !== undefined && round % 2 === 0 ? await base() : undefined;
      const d = await pair(
        round,
        () => pgbkDrain(setup, round, staging, names),
        () => pgbrDrain(setup, round, staging, names),
      );
      const b = b0 ?? (BASE_CLI !== undefined ? await base() : undefined);
      const label = round < 0 ? 'warm-up (untimed)' : `round ${round + 1}`;
      if (round >= 0) drains.push(d);
      if (b !== undefined) {
        if (round >= 0) baseDrains.push(b);
        log(`drain ${label} base build: ${b.seconds.toFixed(2)} s (${b.note}), speed ratio vs pgBackRest ${(d.pgbr.seconds / b.seconds).toFixed(2)}×`);
      }
      log(
        `drain ${label} (${loadNote()}): pgbk ${d.pgbk.seconds.toFixed(2)} s (${(names.length / d.pgbk.seconds).toFixed(1)}/s, ${d.pgbk.note}), pgBackRest ${d.pgbr.seconds.toFixed(2)} s (${(names.length / d.pgbr.seconds).toFixed(1)}/s, ${d.pgbr.note}), speed ratio ${(d.pgbr.seconds / d.pgbk.seconds).toFixed(2)}×`,
      );
    };
    for (let round = RSS_ONLY ? 0 : -WARMUP; round < ROUNDS; round++) {
      await withHeavyLock(async () => {
        if (DRAIN_ONLY) {
          await drainRound(round);
          return;
        }
        if (RSS_ONLY) {
          const m = await pgbkBackup(setup);
          log(`-s ${SCALE} round ${round + 1} (${loadNote()}): pgbk backup ${m.seconds.toFixed(2)} s, peak RSS ${m.rssMb.toFixed(0)} MB`);
          full.push({ pgbk: m, pgbr: m });
          return;
        }
        const f = await pair(
          round,
          () => pgbkBackup(setup),
          () => pgbrBackup(setup),
        );
        if (round >= 0) full.push(f);
        log(
          `full ${round < 0 ? 'warm-up (untimed)' : `round ${round + 1}`} (${loadNote()}): pgbk ${f.pgbk.seconds.toFixed(2)} s ${f.pgbk.rssMb.toFixed(0)} MB CPU ${f.pgbk.cpuS.toFixed(1)} s, pgBackRest ${f.pgbr.seconds.toFixed(2)} s ${f.pgbr.rssMb.toFixed(0)} MB CPU ${f.pgbr.cpuS.toFixed(1)} s`,
        );
        if (PROFILE)
          log(
            f.pgbk.stderr
              .split('\n')
              .filter((l) => l.includes('[profile]'))
              .join('\n'),
          );

        await drainRound(round);
      });
    }
    // The restores in a phase of their own, on a settled machine (restorePhase).
    const restoreRow = DRAIN_ONLY || RSS_ONLY ? undefined : await restorePhase(setup);

    const med = <T>(xs: readonly T[], f: (x: T) => number): number => median(xs.map(f));
    const drainRow = (): BenchResult => {
      const drainS = med(drains, (x) => x.pgbk.seconds);
      const pgbrDrainS = med(drains, (x) => x.pgbr.seconds);
      const perRound = drains.map((x) => x.pgbr.seconds / x.pgbk.seconds);
      const basePerRound = baseDrains.map((b, i) => (drains[i]?.pgbr.seconds ?? Number.NaN) / b.seconds);
      const baseNote =
        baseDrains.length === 0
          ? ''
          : `; base build ${list(baseDrains.map((b) => b.seconds))} s, its speed ratios ${list(basePerRound)} (median ${median(basePerRound).toFixed(2)}×), worker CPU ${med(baseDrains, (b) => b.cpuMsPerSegment ?? Number.NaN).toFixed(0)} ms/segment`;
      return {
        name: `s3 WAL backlog drain (${names.length} segments): time`,
        pgbk_s: drainS,
        reference_s: pgbrDrainS,
        ratio: drainS / pgbrDrainS,
        note: `rate pgbk ${(names.length / drainS).toFixed(1)}/s vs pgBackRest async process-max=2 zst-1 ${(names.length / pgbrDrainS).toFixed(1)}/s = ${(pgbrDrainS / drainS).toFixed(2)}× (target ≥ 1.5×); per-round speed ratios ${list(perRound)} (median ${median(perRound).toFixed(2)}×); pgbk ${list(drains.map((x) => x.pgbk.seconds))} s, pgBackRest ${list(drains.map((x) => x.pgbr.seconds))} s; worker CPU ${med(drains, (x) => x.pgbk.cpuMsPerSegment ?? Number.NaN).toFixed(0)} ms/segment, peak RSS ${med(drains, (x) => x.pgbk.rssMb ?? Number.NaN).toFixed(0)} MB (medians); ${drains.map((x) => x.pgbk.note).join(', ')}; median of ${ROUNDS} interleaved (${WARMUP} untimed before); ${HTTPS ? 'pgbk over HTTPS (caFile, verified)' : 'pgbk over HTTP'}, pgBackRest over HTTPS (verify-tls=n); ${loadNote()} at the end${baseNote}`,
      };
    };
    if (DRAIN_ONLY || small === undefined) return [drainRow()];
    if (RSS_ONLY) {
      const bigRssOnly = med(full, (x) => x.pgbk.rssMb);
      const transportOnly = HTTPS ? 'pgbk over HTTPS (caFile, verified)' : 'pgbk over HTTP';
      return [
        {
          name: `s3 backup peak RSS, smaller cluster (-s ${SMALL_SCALE})`,
          pgbk_s: small.rssMb,
          reference_s: Number.NaN,
          ratio: Number.NaN,
          note: `MB, not seconds: /usr/bin/time -v, largest process of pgbk's tree; median of ${small.all.length} (${list(small.all.map((x) => x.rssMb))} MB); backup ${list(small.all.map((x) => x.seconds))} s; ${transportOnly}`,
        },
        {
          name: `s3 backup peak RSS, bigger cluster (-s ${SCALE})`,
          pgbk_s: bigRssOnly,
          reference_s: small.rssMb,
          ratio: bigRssOnly / small.rssMb,
          note: `MB, not seconds; reference = the -s ${SMALL_SCALE} median: the ratio is the growth with the cluster's size (${list(full.map((x) => x.pgbk.rssMb))} MB); backup ${list(full.map((x) => x.pgbk.seconds))} s (median ${med(full, (x) => x.pgbk.seconds).toFixed(2)} s); ${transportOnly}; ${loadNote()} at the end`,
        },
      ];
    }
    const fullS = med(full, (x) => x.pgbk.seconds);
    const pgbrS = med(full, (x) => x.pgbr.seconds);
    const bigRss = med(full, (x) => x.pgbk.rssMb);
    const transport = HTTPS ? 'pgbk over HTTPS (caFile, verified)' : 'pgbk over HTTP';
    const tail = `median of ${ROUNDS} interleaved (${WARMUP} untimed before); ${transport}, pgBackRest over HTTPS (verify-tls=n); ${loadNote()} at the end`;
    return [
      {
        name: `s3 full backup vs pgBackRest zst process-max=2 (pgbench -s ${SCALE})`,
        pgbk_s: fullS,
        reference_s: pgbrS,
        ratio: fullS / pgbrS,
        note: `pgbk ${list(full.map((x) => x.pgbk.seconds))} s, pgBackRest ${list(full.map((x) => x.pgbr.seconds))} s; CPU s ${med(full, (x) => x.pgbk.cpuS).toFixed(1)} vs ${med(full, (x) => x.pgbr.cpuS).toFixed(1)}; peak RSS ${bigRss.toFixed(0)} vs ${med(full, (x) => x.pgbr.rssMb).toFixed(0)} MB; ${tail}`,
      },
      drainRow(),
      ...(restoreRow === undefined ? [] : [restoreRow]),
      {
        name: `s3 backup peak RSS, smaller cluster (-s ${SMALL_SCALE})`,
        pgbk_s: small.rssMb,
        reference_s: Number.NaN,
        ratio: Number.NaN,
        note: `MB, not seconds: /usr/bin/time -v, largest process of pgbk's tree (node, pg_basebackup, zstd); backup took ${small.seconds.toFixed(2)} s`,
      },
      {
        name: `s3 backup peak RSS, bigger cluster (-s ${SCALE})`,
        pgbk_s: bigRss,
        reference_s: small.rssMb,
        ratio: bigRss / small.rssMb,
        note: `MB, not seconds; reference = the -s ${SMALL_SCALE} figure: the ratio is the growth with the cluster's size (${list(full.map((x) => x.pgbk.rssMb))} MB)`,
      },
    ];
  } finally {
    await s?.cluster.destroy().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}
