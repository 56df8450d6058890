/**
 * Core benchmarks (issue #2, item 11), run by bench/run.ts, never by the tests:
 *
 * 1. Base backup of a `pgbench -i -s 50` cluster through `pgbk apply` (a due `* * * * *` schedule,
 *    end to end: probe, pg_basebackup, sha256 of the stored files, archive the end WAL, DONE)
 *    vs bare `pg_basebackup -Ft -X stream --compress=server-zstd:level=1,workers=2 --checkpoint=fast`
 *    (the options pgbk passes), wall time and peak RSS, median of interleaved rounds.
 * 2. `pgbk apply` archiving 500 real segments from incoming/ (validate, sha256, zstd -1, write,
 *    fsync, link, SHA256SUMS, drop the incoming copy) vs `zstd -1` over the same files.
 * 3. `pgbk plan` on a synthetic catalog of 200 backups and 200,000 segments: wall and peak RSS.
 *
 * 1 and 2 share one cluster (startBenchCluster). Every benchmark removes what it created.
 * PGBK_BENCH_SCALE, PGBK_BENCH_SEGMENTS, PGBK_BENCH_WAL_CAP_S, PGBK_BENCH_PLAN_SEGMENTS shrink a run;
 * PGBK_BENCH_STAGING=DIR keeps the generated WAL segments there and reuses them on the next run.
 */

import { existsSync } from 'node:fs';
import { link, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readBackups } from '../src/catalog/backups.js';
import { listArchivedWal } from '../src/catalog/wal-archive.js';
import { isSegmentName } from '../src/pg/wal-name.js';
import { PG_BINDIR, tempDir } from '../test/support/postgres.js';
import { CLI, makeWorld, runPgbk, type World } from '../test/support/pgbk.js';
import { runProcess, sleep, timed, timedValue } from './process.js';
import type { BenchResult } from './restore.js';
import { writeSyntheticCatalog } from './synthetic-catalog.js';

export interface PlanBenchResult extends BenchResult {
  readonly peak_rss_mb: number;
}

const SERVER = 'main';

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${raw}: expected a positive number`);
  return n;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function pgbk(args: readonly string[]): Promise<string> {
  const r = await runPgbk(args);
  if (r.code !== 0) throw new Error(`pgbk ${args.join(' ')}: exit ${String(r.code ?? r.signal)}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

function configText(catalog: string, conninfo: string | undefined, serverLines: readonly string[]): string {
  return [
    `catalog: ${catalog}`,
    'servers:',
    `  ${SERVER}:`,
    ...(conninfo === undefined ? [] : [`    connection: "${conninfo}"`]),
    ...serverLines.map((l) => `    ${l}`),
    '',
  ].join('\n');
}

function psqlArgs(world: World): string[] {
  return ['-h', world.cluster.socketDir, '-p', String(world.cluster.port), '-U', 'postgres'];
}

// ---------------------------------------------------------------------------------------------
// The shared cluster.

/**
 * A `pgbench -i -s SCALE` cluster archiving into <catalog>/main/incoming/ (makeWorld's cp + mv
 * archive_command). Its WAL so far is archived by one untimed `pgbk apply`, which also records the
 * identity (first contact through `connection`). No schedule: apply takes no backup by itself.
 */
export async function startBenchCluster(): Promise<World> {
  const scale = envNumber('PGBK_BENCH_SCALE', 50);
  const world = await makeWorld({
    serverYaml: 'retention: { redundancy: 10 }',
    cluster: { conf: { max_wal_size: '2GB', checkpoint_timeout: '2min', wal_compression: 'off' } },
  });
  try {
    log(`pgbench -i -s ${scale} …`);
    await runProcess(path.join(PG_BINDIR, 'pgbench'), ['-i', '-q', '-s', String(scale), ...psqlArgs(world), 'postgres']);
    await world.cluster.sql('CHECKPOINT');
    await world.cluster.sql('SELECT pg_switch_wal()');
    await sleep(1000);
    await pgbk(['--config', world.configPath, 'apply']);
    return world;
  } catch (err) {
    await world.destroy();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Base backup.

/** One timed process under `/usr/bin/time -v`: wall seconds (measured here) and peak RSS (MB). */
async function timedWithRss(cmd: string, args: readonly string[]): Promise<{ readonly seconds: number; readonly rssMb: number }> {
  const { seconds, value } = await timedValue(() => runProcess('/usr/bin/time', ['-v', cmd, ...args], { env: { FORCE_COLOR: undefined } }));
  // PGBK_SSH_PROFILE=1 in the bench's environment: pgbk's phases (lib/profile.ts), as it printed them.
  const phases = value.stderr.split('\n').filter((l) => l.startsWith('[profile]'));
  if (phases.length > 0) process.stderr.write(`[bench] ${path.basename(args[0] ?? cmd)} phases:\n${phases.join('\n')}\n`);
  return { seconds, rssMb: peakRssKb(value.stderr) / 1024 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? Number.NaN) + (s[mid] ?? Number.NaN)) / 2;
}

/** The result of benchBaseBackup: times and peak RSS of pgbk and of the bare pg_basebackup. */
export interface BaseBackupBenchResult extends BenchResult {
  readonly peak_rss_mb: number;
  readonly reference_peak_rss_mb: number;
}

/**
 * `pgbk apply` taking one basebackup-method backup (end to end: start-up, probe, pg_basebackup,
 * sha256 of the stored files, waiting for and archiving the end segment, DONE) against bare
 * pg_basebackup with the options pgbk passes (-Ft -X stream --compress=server-zstd:level=1,workers=2
 * --checkpoint=fast), in PGBK_BENCH_ROUNDS (default 3) interleaved rounds, medians compared. A
 * third command, the same pg_basebackup with -X none (what pgbk ran before: the server then waits
 * for archive_command at backup end), is timed in the same rounds for the record.
 * PGBK_BENCH_BASEBACKUP_BEFORE_CLI times another build's apply right after pgbk's in each round.
 */
export async function benchBaseBackup(world: World): Promise<BaseBackupBenchResult> {
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing (peak RSS): apt-get install time');
  const rounds = envNumber('PGBK_BENCH_ROUNDS', 3);
  const drainConfig = world.configPath;
  const backupConfig = path.join(world.root, 'pgbk-scheduled.yaml');
  await writeFile(backupConfig, configText(world.catalog, world.cluster.conninfo, ['backup: { schedule: "* * * * *" }', 'retention: { redundancy: 10 }']));
  const refDir = path.join(world.root, 'ref-basebackup');
  const pgBasebackup = path.join(PG_BINDIR, 'pg_basebackup');
  const refArgs = (walMethod: 'stream' | 'none'): string[] => [
    `--dbname=${world.cluster.conninfo}`,
    '-D',
    refDir,
    '-Ft',
    '-X',
    walMethod,
    '--compress=server-zstd:level=1,workers=2',
    '--checkpoint=fast',
  ];
  const pgbkRuns: { seconds: number; rssMb: number }[] = [];
  // PGBK_BENCH_BASEBACKUP_BEFORE_CLI=<dist/src/cli.js of another build>: its apply too, each round
  // right after this build's, for a before/after ratio from the same rounds.
  const beforeCli = process.env['PGBK_BENCH_BASEBACKUP_BEFORE_CLI'];
  const beforeRuns: { seconds: number; rssMb: number }[] = [];
  const refRuns: { seconds: number; rssMb: number }[] = [];
  const noneRuns: number[] = [];
  let stored = 0;
  const timedApply = async (cli: string, minute: number, what: string): Promise<{ seconds: number; rssMb: number }> => {
    // WAL the previous run left in incoming/ is archived untimed, so each timed apply does the
    // same work: one backup and its own end segment.
    await pgbk(['--config', drainConfig, 'apply']);
    const before = (await readBackups(world.catalog, SERVER)).filter((b) => b.status === 'DONE').length;
    // Each apply is a new minute of the schedule, so the backup is due.
    const now = new Date(start + minute * 60_000).toISOString();
    const r = await timedWithRss(process.execPath, [cli, '--config', backupConfig, 'apply', '--now', now]);
    const done = (await readBackups(world.catalog, SERVER)).filter((b) => b.status === 'DONE');
    if (done.length !== before + 1) throw new Error(`${what} apply did not produce one DONE backup (${before} → ${done.length})`);
    stored = done[done.length - 1]?.sizes?.stored ?? 0;
    return r;
  };
  const start = Date.now();
  const runPgbkRound = async (round: number): Promise<void> => {
    const r = await timedApply(CLI, 2 * round, 'pgbk');
    pgbkRuns.push(r);
    log(`base backup round ${round + 1}: pgbk apply ${r.seconds.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
    if (beforeCli === undefined) return;
    const b = await timedApply(beforeCli, 2 * round + 1, 'before');
    beforeRuns.push(b);
    log(`base backup round ${round + 1}: before (${beforeCli}) apply ${b.seconds.toFixed(2)} s, ${b.rssMb.toFixed(0)} MB`);
  };
  const runRef = async (round: number): Promise<void> => {
    const r = await timedWithRss(pgBasebackup, refArgs('stream'));
    if (!existsSync(path.join(refDir, 'base.tar.zst'))) throw new Error('pg_basebackup wrote no base.tar.zst');
    await rm(refDir, { recursive: true, force: true });
    refRuns.push(r);
    log(`base backup round ${round + 1}: pg_basebackup -X stream ${r.seconds.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
  };
  const runNone = async (round: number): Promise<void> => {
    const t = await timed(() => runProcess(pgBasebackup, refArgs('none')));
    await rm(refDir, { recursive: true, force: true });
    noneRuns.push(t);
    log(`base backup round ${round + 1}: pg_basebackup -X none ${t.toFixed(2)} s`);
  };
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate who goes first: a checkpoint or the page cache favours neither side.
      const order = round % 2 === 0 ? [runPgbkRound, runRef, runNone] : [runRef, runPgbkRound, runNone];
      for (const step of order) await step(round);
    }
  } finally {
    await rm(refDir, { recursive: true, force: true });
  }
  const pgbkS = median(pgbkRuns.map((r) => r.seconds));
  const refS = median(refRuns.map((r) => r.seconds));
  const pgbkRss = median(pgbkRuns.map((r) => r.rssMb));
  const refRss = median(refRuns.map((r) => r.rssMb));
  return {
    name: `base backup pgbench -s ${envNumber('PGBK_BENCH_SCALE', 50)} (${Math.round(stored / 1048576)} MiB stored)`,
    pgbk_s: pgbkS,
    reference_s: refS,
    ratio: pgbkS / refS,
    peak_rss_mb: pgbkRss,
    reference_peak_rss_mb: refRss,
    note:
      `median of ${rounds} interleaved rounds; pgbk: ${fmtList(pgbkRuns.map((r) => r.seconds))} s, ` +
      `pg_basebackup -Ft -X stream --compress=server-zstd:level=1,workers=2 --checkpoint=fast: ${fmtList(refRuns.map((r) => r.seconds))} s; ` +
      `peak RSS pgbk ${pgbkRss.toFixed(0)} MB vs ${refRss.toFixed(0)} MB (+${(pgbkRss - refRss).toFixed(0)} MB); ` +
      `same with -X none (server waits for archive_command): ${fmtList(noneRuns)} s; ` +
      'pgbk adds node start-up, probe, sha256 of stored files, waiting for and archiving the end segment, DONE' +
      (beforeCli === undefined
        ? ''
        : `; before (${beforeCli}): ${fmtList(beforeRuns.map((r) => r.seconds))} s, median ${median(beforeRuns.map((r) => r.seconds)).toFixed(2)} s = ${(median(beforeRuns.map((r) => r.seconds)) / refS).toFixed(2)}× pg_basebackup, ${median(beforeRuns.map((r) => r.rssMb)).toFixed(0)} MB; after ÷ before ${(pgbkS / median(beforeRuns.map((r) => r.seconds))).toFixed(2)}×`),
  };
}

function fmtList(xs: readonly number[]): string {
  return xs.map((x) => x.toFixed(2)).join('/');
}

// ---------------------------------------------------------------------------------------------
// 2. Archiving segments from incoming/.

function segmentsIn(names: readonly string[]): string[] {
  return names.filter(isSegmentName).sort();
}

/**
 * Write real WAL until `want` new segments have been archived into incoming/, or the time cap is
 * reached: pgbench -N (the usual OLTP record mix, with full-page images after each 2-minute
 * checkpoint) alongside bulk UPDATEs of a quarter of pgbench_accounts (heap update records) and an
 * INSERT of text rows — pgbench alone writes only ~1-2 MB/s of WAL on this machine. Returns the new
 * segments, moved into `staging`.
 */
export async function generateSegments(world: World, staging: string, want: number, capSeconds: number): Promise<string[]> {
  const already = new Set(segmentsIn(await readdir(world.incoming)));
  const fresh = async (): Promise<string[]> => segmentsIn(await readdir(world.incoming)).filter((n) => !already.has(n));
  const deadline = Date.now() + capSeconds * 1000;
  const pgbench = path.join(PG_BINDIR, 'pgbench');
  await world.cluster.sql('CREATE TABLE IF NOT EXISTS bench_fill (id bigint, payload text)');
  let round = 0;
  while ((await fresh()).length < want && Date.now() < deadline) {
    const k = round++ % 4;
    await Promise.all([
      runProcess(pgbench, ['-n', '-N', '-c', '2', '-j', '1', '-T', '10', '-M', 'prepared', ...psqlArgs(world), 'postgres']),
      world.cluster.sql(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 4 = ${k}`),
      world.cluster.sql(`INSERT INTO bench_fill SELECT g, md5(g::text) || repeat(md5((g * ${round})::text), 4) FROM generate_series(1, 300000) g`),
    ]);
    log(`WAL generation: ${(await fresh()).length}/${want} segments archived`);
  }
  await world.cluster.sql('SELECT pg_switch_wal()');
  await sleep(2000);
  const chosen = (await fresh()).slice(0, want);
  await mkdir(staging, { recursive: true });
  for (const name of chosen) await rename(path.join(world.incoming, name), path.join(staging, name));
  return chosen;
}

export async function benchArchiveWal(world: World): Promise<BenchResult> {
  const want = envNumber('PGBK_BENCH_SEGMENTS', 500);
  const cap = envNumber('PGBK_BENCH_WAL_CAP_S', 420);
  const root = await tempDir('pgbk-bench-archive-');
  try {
    // PGBK_BENCH_STAGING keeps the generated segments for re-runs (profiling); they come from
    // another cluster then, so each round's catalog learns its identity from them instead.
    const kept = process.env['PGBK_BENCH_STAGING'];
    const staging = kept ?? path.join(root, 'staging');
    const reuse = kept !== undefined && existsSync(kept) ? segmentsIn(await readdir(kept)).slice(0, want) : [];
    if (reuse.length === 0) log(`generating ${want} WAL segments (cap ${cap} s) …`);
    const names = reuse.length > 0 ? reuse : await generateSegments(world, staging, want, cap);
    if (names.length === 0) throw new Error('no WAL segment was archived during generation');
    const files = names.map((n) => path.join(staging, n));
    const pgbkTimes: number[] = [];
    const refTimes: number[] = [];
    let storedBytes = 0;
    for (let round = 0; round < 2; round++) {
      const catalog = path.join(root, `catalog-${round}`);
      const incoming = path.join(catalog, SERVER, 'incoming');
      const config = path.join(root, `pgbk-${round}.yaml`);
      await mkdir(incoming, { recursive: true });
      await writeFile(config, configText(catalog, reuse.length > 0 ? undefined : world.cluster.conninfo, ['retention: { redundancy: 2 }']));
      // Hard links: the same bytes as a copy, without a second 8 GB in the page cache.
      for (const name of names) await link(path.join(staging, name), path.join(incoming, name));

      const runRef = async (): Promise<void> => {
        const out = path.join(root, 'zstd-out');
        await mkdir(out);
        const t = await timed(() => runProcess('zstd', ['-1', '-q', '-f', '--output-dir-flat', out, ...files]));
        const made = (await readdir(out)).length;
        await rm(out, { recursive: true, force: true });
        if (made !== files.length) throw new Error(`zstd wrote ${made} files for ${files.length} inputs`);
        refTimes.push(t);
        log(`archive round ${round + 1}: zstd -1 ${t.toFixed(2)} s`);
      };
      const runPgbkApply = async (): Promise<void> => {
        const { seconds } = await timedValue(() => pgbk(['--config', config, 'apply']));
        const archived = await listArchivedWal(catalog, SERVER);
        const left = segmentsIn(await readdir(incoming));
        if (archived.segments.length !== names.length || left.length !== 0) {
          throw new Error(`pgbk apply archived ${archived.segments.length} of ${names.length} segments, ${left.length} left in incoming/`);
        }
        storedBytes = await dirBytes(path.join(catalog, SERVER, 'wal'));
        pgbkTimes.push(seconds);
        log(`archive round ${round + 1}: pgbk apply ${seconds.toFixed(2)} s`);
      };
      if (round % 2 === 0) {
        await runRef();
        await runPgbkApply();
      } else {
        await runPgbkApply();
        await runRef();
      }
      await rm(catalog, { recursive: true, force: true });
    }
    const pgbkS = Math.min(...pgbkTimes);
    const refS = Math.min(...refTimes);
    const inMiB = (names.length * 16) | 0;
    return {
      name: `archive ${names.length} segments from incoming/ (zstd)`,
      pgbk_s: pgbkS,
      reference_s: refS,
      ratio: pgbkS / refS,
      note:
        `min of 2 alternating runs; pgbk: ${fmtList(pgbkTimes)}, zstd: ${fmtList(refTimes)}; ${inMiB} MiB → ${Math.round(storedBytes / 1048576)} MiB; ` +
        'reference: one `zstd -1 -q -f --output-dir-flat` over all files (no fsync, no checksum list, keeps the sources); ' +
        'pgbk: whole apply incl. start-up and probe, validates headers, sha256, fsyncs, drops the incoming copies',
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// 3. plan on a big synthetic catalog.

function peakRssKb(timeOutput: string): number {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(timeOutput);
  if (m?.[1] === undefined) throw new Error(`no "Maximum resident set size" in /usr/bin/time output:\n${timeOutput.slice(-1000)}`);
  return Number(m[1]);
}

export async function benchPlan(): Promise<PlanBenchResult> {
  const backups = 200;
  const segments = envNumber('PGBK_BENCH_PLAN_SEGMENTS', 200_000);
  const redundancy = 100;
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing (peak RSS): apt-get install time');
  const root = await tempDir('pgbk-bench-plan-');
  try {
    const catalog = path.join(root, 'catalog');
    log(`writing a synthetic catalog: ${backups} backups, ${segments} segments …`);
    const synth = writeSyntheticCatalog({ catalog, server: SERVER, backups, segments, firstBackup: new Date('2025-01-01T03:00:00Z') });
    const config = path.join(root, 'pgbk.yaml');
    await writeFile(config, configText(catalog, undefined, [`retention: { redundancy: ${redundancy} }`]));
    const now = new Date(synth.newestEnd.getTime() + 3_600_000).toISOString();

    // Reference: merely listing the same files once.
    const refS = await timed(() => runProcess('find', [catalog, '-type', 'f', '-name', '*.zst']));
    const { seconds, value } = await timedValue(() => runProcess('/usr/bin/time', ['-v', process.execPath, CLI, '--config', config, 'plan', '--now', now]));
    const deletions = value.stdout.split('\n').filter((l) => /^\s*- delete-backup\s/.test(l)).length;
    const prune = /- prune-wal\s+(\d+) segments/.exec(value.stdout);
    // Everything before the oldest retained backup's beginWal goes.
    const expectedPrune = synth.beginSegments[backups - redundancy];
    if (deletions !== backups - redundancy || prune?.[1] === undefined || Number(prune[1]) !== expectedPrune) {
      throw new Error(`plan did not do the expected work (${deletions} deletions, prune ${prune?.[1] ?? 'none'}):\n${value.stdout.slice(0, 2000)}`);
    }
    const rssMb = peakRssKb(value.stderr) / 1024;
    return {
      name: `plan: ${backups} backups, ${segments} segments`,
      pgbk_s: seconds,
      reference_s: refS,
      ratio: seconds / refS,
      peak_rss_mb: rssMb,
      note: `peak RSS ${rssMb.toFixed(0)} MB; plans ${deletions} deletions and prunes ${prune[1]} segments; reference: \`find\` listing the same files`,
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
