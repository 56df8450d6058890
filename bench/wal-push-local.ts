/**
 * Local `pgbk wal-push` as PostgreSQL's archiver sees it (issue 13 item 3), against pgBackRest's
 * `archive-push` with `--archive-async --process-max=2` (zst level 1, like pgbk's WAL) on the same
 * real WAL segments, in the same run:
 *
 *  - per segment when the segment is already durable: the worker (pgbk) / async process
 *    (pgBackRest) has pushed ahead; what one archive_command costs PostgreSQL (target ≤ 0.010 s);
 *  - backlog drain: 200 segments marked .ready at once, archived one archive_command after another
 *    from a cold start (no worker running), segments per second (target ≥ 30; pgBackRest async
 *    measured 24/s on this machine kind).
 *
 * The archiver is emulated as PostgreSQL 15 runs it (pgarch.c): for each .ready file, oldest
 * first, `sh -c` the archive_command in the data directory with %p = pg_wal/NAME and %f = NAME,
 * wait for it, rename .ready to .done on exit 0, retry after 1 s otherwise. Each tool gets its own
 * copy of the data directory's pg_wal (hard links of the same segments) and its own archive.
 * pgbk's archive_command is the one `pgbk wal-push --print-archive-command` prints.
 * PGBK_BENCH_LOCAL_PUSH_SEGMENTS shrinks the backlog (the per-segment set is 20 more).
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { listArchivedWal } from '../src/catalog/wal-archive.js';
import { isSegmentName } from '../src/pg/wal-name.js';
import { localWorkerKey, runtimeDir } from '../src/wal-push/target.js';
import { runPgbk, type World } from '../test/support/pgbk.js';
import { tempDir } from '../test/support/postgres.js';
import { generateSegments } from './core.js';
import { runProcess, sleep } from './process.js';
import type { BenchResult } from './restore.js';

const PGBACKREST = '/usr/bin/pgbackrest';
const LATENCY_SEGMENTS = 20;

export function drainCount(): number {
  const raw = process.env['PGBK_BENCH_LOCAL_PUSH_SEGMENTS'];
  return raw === undefined || raw === '' ? 200 : Math.max(1, Number(raw));
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** A fake data directory: pg_wal with the segments (hard links) marked .ready, global/pg_control. */
export async function dataDir(root: string, name: string, pgControl: string): Promise<string> {
  const d = path.join(root, name);
  await mkdir(path.join(d, 'pg_wal', 'archive_status'), { recursive: true });
  await mkdir(path.join(d, 'global'));
  await copyFile(pgControl, path.join(d, 'global', 'pg_control'));
  return d;
}

export async function markReady(d: string, staging: string, names: readonly string[]): Promise<void> {
  for (const n of names) await link(path.join(staging, n), path.join(d, 'pg_wal', n));
  for (const n of names) await writeFile(path.join(d, 'pg_wal', 'archive_status', `${n}.ready`), '');
}

function runShell(command: string, cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

/** PostgreSQL's archiver over `names` in `d`: seconds per archive_command run that succeeded, and the total. */
export async function archiver(
  d: string,
  template: string,
  names: readonly string[],
  beside?: string,
): Promise<{ readonly perSegment: number[]; readonly total: number; readonly beside: number[] }> {
  const perSegment: number[] = [];
  const besideTimes: number[] = [];
  const t0 = process.hrtime.bigint();
  for (const name of names) {
    const command = template.replace(/%(%|p|f)/g, (_m, c: string) => (c === '%' ? '%' : c === 'p' ? `pg_wal/${name}` : name));
    for (let attempt = 0; ; attempt++) {
      const s = process.hrtime.bigint();
      const r = await runShell(command, d);
      const seconds = Number(process.hrtime.bigint() - s) / 1e9;
      if (r.code === 0) {
        perSegment.push(seconds);
        if (beside !== undefined) {
          // The bare cost of one `sh -c` at this moment's load, right beside the real command.
          const b = process.hrtime.bigint();
          await runShell(beside, d);
          besideTimes.push(Number(process.hrtime.bigint() - b) / 1e9);
        }
        break;
      }
      if (attempt >= 5) throw new Error(`archive_command for ${name} failed ${attempt + 1} times: ${r.stderr.trim()}`);
      await sleep(1000);
    }
    await rename(path.join(d, 'pg_wal', 'archive_status', `${name}.ready`), path.join(d, 'pg_wal', 'archive_status', `${name}.done`));
  }
  return { perSegment, total: Number(process.hrtime.bigint() - t0) / 1e9, beside: besideTimes };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? Number.NaN;
}

const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`;

interface ToolRun {
  readonly drain: number;
  readonly perSegment: number;
  /** Median `sh -c 'exit 0'` run right after each per-segment command (pgbk only). */
  readonly bareShell?: number;
  readonly peakRssMb?: number;
  readonly coldFirst: number;
  readonly note: string;
}

/** Wait until every name has a marker in `dir` (the worker pushed ahead), or `ms` passed. */
async function waitMarkers(dir: string, names: readonly string[], ms: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const have = new Set(await readdir(dir).catch(() => []));
    if (names.every((n) => have.has(n))) return;
    await sleep(20);
  }
}

async function runPgbkLocal(world: World, root: string, staging: string, pgControl: string, drainNames: string[], latencyNames: string[]): Promise<ToolRun> {
  const catalog = path.join(root, 'pgbk-catalog');
  const config = path.join(root, 'pgbk.yaml');
  await mkdir(catalog);
  await writeFile(config, `catalog: ${catalog}\nservers:\n  main:\n    connection: "${world.cluster.conninfo}"\n    retention: { redundancy: 2 }\n`);
  const d = await dataDir(root, 'pgdata-pgbk', pgControl);
  const printed = await runPgbk(['--config', config, 'wal-push', '--print-archive-command', '--pgdata', d, 'main']);
  if (printed.code !== 0) throw new Error(`pgbk wal-push --print-archive-command: ${printed.stderr}`);
  const template = printed.stdout.trim();
  const key = localWorkerKey(config, 'main', d);
  const logFile = path.join(runtimeDir(), `walpush-${key}.log`);
  try {
    await markReady(d, staging, drainNames);
    const drain = await archiver(d, template, drainNames);
    const archived = (await listArchivedWal(catalog, 'main')).segments.length;
    if (archived !== drainNames.length) throw new Error(`pgbk archived ${archived} of ${drainNames.length} segments`);
    // Already durable: PostgreSQL marks them .ready, the worker pushes ahead (inotify), then the archiver asks.
    await markReady(d, staging, latencyNames);
    await waitMarkers(path.join(runtimeDir(), `walpush-${key}.acked`), latencyNames, 30_000);
    const latency = await archiver(d, template, latencyNames, 'exit 0');
    const pid = Number(/wal-push-worker\[(\d+)\]/.exec(await readFile(logFile, 'utf8').catch(() => ''))?.[1] ?? 0);
    const hwm = pid > 0 ? /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1] : undefined;
    return {
      drain: drain.total,
      perSegment: median(latency.perSegment),
      bareShell: median(latency.beside),
      ...(hwm === undefined ? {} : { peakRssMb: Number(hwm) / 1024 }),
      coldFirst: drain.perSegment[0] ?? Number.NaN,
      note: `worker peak RSS ${hwm === undefined ? '?' : `${(Number(hwm) / 1024).toFixed(0)} MB`}; first segment (cold: starts the worker) ${ms(drain.perSegment[0] ?? 0)}`,
    };
  } finally {
    // Stop the worker this run started, by its PID (from its own log).
    const text = await readFile(logFile, 'utf8').catch(() => '');
    for (const m of new Set([...text.matchAll(/wal-push-worker\[(\d+)\]/g)].map((x) => Number(x[1])))) {
      try {
        process.kill(m, 'SIGTERM');
      } catch {
        // exited already
      }
    }
    await rm(logFile, { force: true });
  }
}

async function runPgbackrest(world: World, root: string, staging: string, pgControl: string, drainNames: string[], latencyNames: string[]): Promise<ToolRun> {
  const repo = path.join(root, 'pgbackrest-repo');
  const spool = path.join(root, 'pgbackrest-spool');
  const logs = path.join(root, 'pgbackrest-log');
  for (const p of [repo, spool, logs]) await mkdir(p);
  const d = await dataDir(root, 'pgdata-pgbackrest', pgControl);
  const common = [
    '--stanza=bench',
    `--repo1-path=${repo}`,
    `--log-path=${logs}`,
    `--lock-path=${path.join(root, 'pgbackrest-lock')}`,
    '--log-level-console=warn',
    '--log-level-file=off',
  ];
  // stanza-create talks to the running cluster; archive-push then reads the copied pg_control.
  const c = world.cluster;
  await runProcess(PGBACKREST, [
    ...common,
    `--pg1-path=${c.pgdata}`,
    `--pg1-socket-path=${c.socketDir}`,
    `--pg1-port=${c.port}`,
    '--pg1-user=postgres',
    'stanza-create',
  ]);
  const template = [
    PGBACKREST,
    ...common,
    `--pg1-path=${d}`,
    `--spool-path=${spool}`,
    '--compress-type=zst',
    '--compress-level=1',
    '--archive-async',
    '--process-max=2',
    'archive-push',
    '%p',
  ].join(' ');
  await markReady(d, staging, drainNames);
  const drain = await archiver(d, template, drainNames);
  await markReady(d, staging, latencyNames);
  const latency = await archiver(d, template, latencyNames);
  return {
    drain: drain.total,
    perSegment: median(latency.perSegment),
    coldFirst: drain.perSegment[0] ?? Number.NaN,
    note: `first segment ${ms(drain.perSegment[0] ?? 0)}`,
  };
}

/** The per-segment and backlog-drain rows (pgbk's local fast path vs pgBackRest async). */
export async function benchWalPushLocal(world: World): Promise<(BenchResult & { readonly peak_rss_mb?: number })[]> {
  const count = drainCount();
  const root = await tempDir('pgbk-bench-localpush-');
  try {
    const kept = process.env['PGBK_BENCH_STAGING'];
    const staging = kept ?? path.join(root, 'staging');
    const want = count + LATENCY_SEGMENTS;
    const reuse = kept !== undefined && existsSync(kept) ? (await readdir(kept)).filter(isSegmentName).sort().slice(0, want) : [];
    if (reuse.length < want) log(`generating ${want} WAL segments …`);
    const names = reuse.length >= want ? reuse : await generateSegments(world, staging, want, 900);
    if (names.length < want) throw new Error(`only ${names.length} of ${want} segments generated`);
    const drainNames = names.slice(0, count);
    const latencyNames = names.slice(count, want);
    const pgControl = path.join(world.cluster.pgdata, 'global', 'pg_control');
    let ref: ToolRun | undefined;
    let refNote = 'pgBackRest not installed';
    const runRef = async (): Promise<void> => {
      if (!existsSync(PGBACKREST)) return;
      log('… pgBackRest archive-push --archive-async --process-max=2');
      try {
        ref = await runPgbackrest(world, root, staging, pgControl, drainNames, latencyNames);
        refNote = `pgBackRest: ${ref.note}`;
      } catch (err) {
        // pgbk's own figures still stand; say why there is no reference.
        refNote = `pgBackRest failed: ${(err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' ')}`;
        log(refNote);
      }
    };
    // PGBK_BENCH_REF_FIRST=1 runs the reference first: alternate it between runs (interleaved rounds).
    const refFirst = process.env['PGBK_BENCH_REF_FIRST'] === '1';
    const load0 = loadavg()[0]!;
    if (refFirst) await runRef();
    log(`local wal-push: ${count}-segment backlog drain and ${LATENCY_SEGMENTS} pushed-ahead segments, pgbk …`);
    const pgbk = await runPgbkLocal(world, root, staging, pgControl, drainNames, latencyNames);
    if (!refFirst) await runRef();
    const load = `load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}${refFirst ? ', reference ran first' : ''}`;
    return [
      {
        name: 'local wal-push per segment, already durable (median)',
        pgbk_s: pgbk.perSegment,
        reference_s: ref?.perSegment ?? Number.NaN,
        ratio: pgbk.perSegment / (ref?.perSegment ?? Number.NaN),
        note: `seconds PostgreSQL waits per archive_command; pgbk: --print-archive-command (shell fast path), ${pgbk.note}; ${refNote}; ${load}`,
      },
      {
        name: "local wal-push per segment beside a bare sh -c 'exit 0' (median)",
        pgbk_s: pgbk.perSegment,
        reference_s: pgbk.bareShell ?? Number.NaN,
        ratio: pgbk.perSegment / (pgbk.bareShell ?? Number.NaN),
        note: `the shell alone, run right after each of pgbk's ${LATENCY_SEGMENTS} archive_commands: what any archive_command costs at this load; ${load}`,
      },
      {
        name: `local wal-push backlog drain (${count} segments)`,
        pgbk_s: pgbk.drain,
        reference_s: ref?.drain ?? Number.NaN,
        ratio: pgbk.drain / (ref?.drain ?? Number.NaN),
        ...(pgbk.peakRssMb === undefined ? {} : { peak_rss_mb: pgbk.peakRssMb }),
        note: `pgbk ${(count / pgbk.drain).toFixed(1)} segments/s${ref === undefined ? '' : `, pgBackRest async (process-max 2, zst 1) ${(count / ref.drain).toFixed(1)} segments/s`}; one archive_command after another from a cold start; ${load}`,
      },
    ];
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
