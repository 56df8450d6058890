/**
 * `ssh` method beside pgBackRest (issue 13 items 1 and 6), in one run on one `pgbench -i -s N`
 * cluster (PGBK_BENCH_PEERS_SCALE, default 50) reached over the tests' private sshd:
 *
 *  - full backup: `pgbk backup` (method ssh, chunks zstd-compressed by the agent on the database
 *    host) vs pgBackRest 2.45 `backup --type=full --compress-type=zst --process-max=2` into a local
 *    repository (pg1-path, run as postgres). PGBK_BENCH_PEERS_ROUNDS rounds (default 3),
 *    interleaved, the order alternating; medians of wall time, stored bytes and peak RSS
 *    (`/usr/bin/time -v`: pgbk's backup-host process; pgBackRest's largest process) side by side.
 *  - incremental: after each round's full, `UPDATE pgbench_accounts SET abalance = abalance + 1
 *    WHERE aid % 20 = 0` (5 % of the rows, spread over every page) then a pgbk backup; and after a
 *    contiguous 5 % update (aid ≤ 5 %) another: time and new bytes stored vs the full.
 *  - restore: `pgbk restore main latest` (the chunked tree, every file and directory flushed) vs
 *    `pgbackrest restore --process-max=2` of its latest full, PGBK_BENCH_PEERS_RESTORE_ROUNDS
 *    rounds (default 3), interleaved; medians.
 *
 * PGBK_BENCH_PEERS_BASELINE_CLI=<dist/src/cli.js of another build> also times that build's restore
 * in each restore round (a before/after beside pgBackRest in one run).
 *
 * PGBK_BENCH_PEERS_KEEP=<dir> copies the world's root (catalog, config) there at the end.
 *
 * PGBK_BENCH_PEERS_PROFILE=1 prints pgbk's phase timings (PGBK_SSH_PROFILE) for every backup.
 *
 * Before each timed pgbk backup the WAL waiting in incoming/ is archived (`pgbk apply`), so the
 * backup measures the copy; pgbk's earlier backups are removed so each full is a full.
 */

import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BackupRecord } from '../src/model/types.js';
import { CLI } from '../test/support/pgbk.js';
import { chownToPostgres, PG_BINDIR, tempDir } from '../test/support/postgres.js';
import { makeSshWorld, type SshWorld } from '../test/integration/ssh/world.js';
import { runProcess, sleep } from './process.js';
import type { BenchResult } from './restore.js';

const SCALE = Number(process.env['PGBK_BENCH_PEERS_SCALE'] ?? '50');
const ROUNDS = Math.max(1, Number(process.env['PGBK_BENCH_PEERS_ROUNDS'] ?? '3'));
const PARALLEL = process.env['PGBK_BENCH_PEERS_PARALLEL'];
const RESTORE_ROUNDS = Math.max(1, Number(process.env['PGBK_BENCH_PEERS_RESTORE_ROUNDS'] ?? '3'));
/** Another build's dist/src/cli.js (e.g. main's) whose restore is timed in the same rounds, after the other two. */
const BASELINE_CLI = process.env['PGBK_BENCH_PEERS_BASELINE_CLI'];
/** A directory to copy the world (catalog and config) into before it is removed: restores can then be timed on their own. */
const KEEP = process.env['PGBK_BENCH_PEERS_KEEP'];

interface Measured {
  readonly seconds: number;
  readonly rssMb: number;
  readonly cpuS: number;
  /** pgbk's phase timings (PGBK_SSH_PROFILE=1), '' for pgBackRest. */
  readonly profile: string;
}

const PROFILE = process.env['PGBK_BENCH_PEERS_PROFILE'] === '1';

function loadNote(): string {
  return `load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}

/** Run under `/usr/bin/time -v`: wall seconds, peak RSS (MB), user+sys CPU seconds. */
async function measured(cmd: string, args: readonly string[], asPostgres = false): Promise<Measured> {
  const t0 = process.hrtime.bigint();
  const out = await runProcess('/usr/bin/time', ['-v', cmd, ...args], { asPostgres, ...(PROFILE ? { env: { PGBK_SSH_PROFILE: '1' } } : {}) });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const num = (re: RegExp): number => Number(re.exec(out.stderr)?.[1] ?? 'NaN');
  return {
    seconds,
    rssMb: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
    cpuS: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
    profile: out.stderr
      .split('\n')
      .filter((l) => l.startsWith('[profile]'))
      .join('\n'),
  };
}

async function duBytes(dir: string): Promise<number> {
  const out = await runProcess('du', ['-s', '-B1', dir]);
  return Number(out.stdout.split('\t')[0]);
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function latest(w: SshWorld): Promise<BackupRecord> {
  const r = await w.pgbk(['show', 'main', 'latest', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { backup: BackupRecord }).backup;
}

async function archivePending(w: SshWorld): Promise<void> {
  await w.cluster.sql('SELECT pg_switch_wal()');
  await sleep(1000);
  const r = await w.pgbk(['apply']);
  if (r.code !== 0) throw new Error(`pgbk apply: ${r.stderr}`);
}

async function pgbkBackup(w: SshWorld): Promise<{ m: Measured; rec: BackupRecord }> {
  await archivePending(w);
  const m = await measured(process.execPath, [CLI, '--config', w.configPath, 'backup', 'main']);
  const rec = await latest(w);
  if (rec.status !== 'DONE' && rec.status !== 'WAITING_FOR_WAL')
    throw new Error(`pgbk backup ${rec.id}: ${rec.status} ${rec.status === 'FAILED' ? rec.error : ''}`);
  return { m, rec };
}

interface PgBackRest {
  readonly config: string;
  readonly repo: string;
}

async function setUpPgBackRest(w: SshWorld): Promise<PgBackRest> {
  const root = await tempDir('pgbk-bench-pgbr-');
  const repo = path.join(root, 'repo');
  const config = path.join(root, 'pgbackrest.conf');
  const c = w.cluster;
  await writeFile(
    config,
    [
      '[global]',
      `repo1-path=${repo}`,
      `log-path=${root}/log`,
      `lock-path=${root}/lock`,
      `spool-path=${root}/spool`,
      'log-level-console=warn',
      'log-level-file=off',
      'start-fast=y',
      // archive_command is the test world's cp into pgbk's incoming/: pgBackRest has no archive here.
      'archive-check=n',
      'compress-type=zst',
      'process-max=2',
      '',
      '[main]',
      `pg1-path=${c.pgdata}`,
      `pg1-socket-path=${c.socketDir}`,
      `pg1-port=${c.port}`,
      'pg1-user=postgres',
      '',
    ].join('\n'),
  );
  await chownToPostgres(root);
  await runProcess('pgbackrest', [`--config=${config}`, '--stanza=main', 'stanza-create'], { asPostgres: true });
  return { config, repo };
}

async function pgBackRestFull(p: PgBackRest): Promise<{ m: Measured; bytes: number }> {
  const m = await measured('pgbackrest', [`--config=${p.config}`, '--stanza=main', 'backup', '--type=full'], true);
  const dir = path.join(p.repo, 'backup', 'main');
  const labels = (await readdir(dir)).filter((n) => /^\d{8}-\d{6}F$/.test(n)).sort();
  const label = labels[labels.length - 1];
  if (label === undefined) throw new Error('pgBackRest wrote no backup');
  const bytes = await duBytes(path.join(dir, label));
  // Keep the repository small: the next round is a full again.
  for (const old of labels.slice(0, -1)) await rm(path.join(dir, old), { recursive: true, force: true });
  return { m, bytes };
}

/** Stored bytes of a pgbk backup: new bytes on disk (hard-linked chunks belong to the older backup). */
function storedOf(rec: BackupRecord): number {
  return rec.status === 'DONE' || rec.status === 'WAITING_FOR_WAL' ? rec.sizes.stored : 0;
}

export async function benchSshPeers(): Promise<BenchResult[]> {
  const w = await makeSshWorld();
  try {
    await w.writeConfig({ backupCompression: 'zstd', ...(PARALLEL === undefined ? {} : { parallel: Number(PARALLEL) }) });
    const c = w.cluster;
    await runProcess(path.join(PG_BINDIR, 'pgbench'), ['-i', '-s', String(SCALE), '-q', '-h', c.socketDir, '-p', String(c.port), '-U', 'postgres', 'postgres']);
    await c.sql('CHECKPOINT');
    await sleep(2500); // files age past the reuse margin, as on any real server
    const pgbr = await setUpPgBackRest(w);
    const rows = 100_000 * SCALE;
    const full: { pgbk: Measured; pgbkBytes: number; pgbr: Measured; pgbrBytes: number }[] = [];
    const incr: { spread: Measured; spreadBytes: number; slice: Measured; sliceBytes: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await rm(path.join(w.catalog, 'main', 'backups'), { recursive: true, force: true });
      let a: { m: Measured; rec: BackupRecord };
      let b: { m: Measured; bytes: number };
      if (round % 2 === 0) {
        a = await pgbkBackup(w);
        b = await pgBackRestFull(pgbr);
      } else {
        b = await pgBackRestFull(pgbr);
        a = await pgbkBackup(w);
      }
      full.push({ pgbk: a.m, pgbkBytes: storedOf(a.rec), pgbr: b.m, pgbrBytes: b.bytes });
      await c.sql('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 20 = 0');
      await c.sql('CHECKPOINT');
      const spread = await pgbkBackup(w);
      await c.sql(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${Math.floor(rows * 0.05)}`);
      await c.sql('CHECKPOINT');
      const slice = await pgbkBackup(w);
      incr.push({ spread: spread.m, spreadBytes: storedOf(spread.rec), slice: slice.m, sliceBytes: storedOf(slice.rec) });
      if (PROFILE)
        process.stderr.write(
          `[bench] full:\n${a.m.profile}\n[bench] spread incremental:\n${spread.m.profile}\n[bench] slice incremental:\n${slice.m.profile}\n`,
        );
      process.stderr.write(
        `[bench] ssh-peers round ${round + 1} (${loadNote()}): pgbk full ${a.m.seconds.toFixed(2)} s ${(storedOf(a.rec) / 1e6).toFixed(1)} MB, pgBackRest ${b.m.seconds.toFixed(2)} s ${(b.bytes / 1e6).toFixed(1)} MB; incr spread ${spread.m.seconds.toFixed(2)} s ${(storedOf(spread.rec) / 1e6).toFixed(1)} MB, slice ${slice.m.seconds.toFixed(2)} s ${(storedOf(slice.rec) / 1e6).toFixed(1)} MB\n`,
      );
    }
    // Restore (issue 13 item 4): the latest pgbk backup (its chunked tree: unchanged chunks are
    // links to the full's, so it restores like a full) vs pgBackRest's latest full with
    // --process-max=2, both into an empty directory, both flushing what they write; interleaved.
    const restores: { pgbk: Measured; pgbr: Measured; baseline?: Measured }[] = [];
    for (let round = 0; round < RESTORE_ROUNDS; round++) {
      const target = path.join(w.root, 'restore-pgbk');
      const pgbrTarget = path.join(w.root, 'restore-pgbr');
      await mkdir(pgbrTarget, { mode: 0o700 });
      await chownToPostgres(pgbrTarget);
      const runPgbk = (): Promise<Measured> =>
        measured(process.execPath, [CLI, '--config', w.configPath, 'restore', 'main', 'latest', '--target-dir', target, '--no-archive']);
      const runPgbr = (): Promise<Measured> =>
        measured('pgbackrest', [`--config=${pgbr.config}`, '--stanza=main', `--pg1-path=${pgbrTarget}`, 'restore', '--process-max=2'], true);
      let a: Measured;
      let b: Measured;
      if (round % 2 === 0) {
        a = await runPgbk();
        b = await runPgbr();
      } else {
        b = await runPgbr();
        a = await runPgbk();
      }
      let base: Measured | undefined;
      if (BASELINE_CLI !== undefined) {
        await rm(target, { recursive: true, force: true });
        base = await measured(process.execPath, [BASELINE_CLI, '--config', w.configPath, 'restore', 'main', 'latest', '--target-dir', target, '--no-archive']);
      }
      restores.push({ pgbk: a, pgbr: b, ...(base === undefined ? {} : { baseline: base }) });
      process.stderr.write(
        `[bench] ssh-peers restore round ${round + 1} (${loadNote()}): pgbk ${a.seconds.toFixed(2)} s, pgBackRest ${b.seconds.toFixed(2)} s${base === undefined ? '' : `, baseline ${base.seconds.toFixed(2)} s`}\n`,
      );
      await rm(target, { recursive: true, force: true });
      await rm(pgbrTarget, { recursive: true, force: true });
    }
    const medR = (f: (x: (typeof restores)[number]) => number): number => median(restores.map(f));
    const med = (f: (x: (typeof full)[number]) => number): number => median(full.map(f));
    const medI = (f: (x: (typeof incr)[number]) => number): number => median(incr.map(f));
    const fullS = med((x) => x.pgbk.seconds);
    const fullBytes = med((x) => x.pgbkBytes);
    const pgbrS = med((x) => x.pgbr.seconds);
    const pgbrBytes = med((x) => x.pgbrBytes);
    const scale = `pgbench -s ${SCALE}, median of ${ROUNDS}`;
    return [
      {
        name: 'ssh full vs pgBackRest zst process-max=2: time',
        pgbk_s: fullS,
        reference_s: pgbrS,
        ratio: fullS / pgbrS,
        note: `${scale}; CPU s ${med((x) => x.pgbk.cpuS).toFixed(1)} (backup host) vs ${med((x) => x.pgbr.cpuS).toFixed(1)}; ${loadNote()} at the end`,
      },
      {
        name: 'ssh full vs pgBackRest: stored bytes',
        pgbk_s: fullBytes / 1e6,
        reference_s: pgbrBytes / 1e6,
        ratio: fullBytes / pgbrBytes,
        note: `MB, not seconds (${scale})`,
      },
      {
        name: 'ssh full vs pgBackRest: peak RSS',
        pgbk_s: med((x) => x.pgbk.rssMb),
        reference_s: med((x) => x.pgbr.rssMb),
        ratio: med((x) => x.pgbk.rssMb) / med((x) => x.pgbr.rssMb),
        note: `MB, not seconds: /usr/bin/time -v of the backup-host process (the agent runs on the database host) vs pgBackRest's largest process`,
      },
      {
        name: 'ssh incremental after 5% spread update (aid % 20 = 0): time vs full',
        pgbk_s: medI((x) => x.spread.seconds),
        reference_s: fullS,
        ratio: medI((x) => x.spread.seconds) / fullS,
        note: `stored ${(medI((x) => x.spreadBytes) / 1e6).toFixed(1)} MB new = ${(medI((x) => x.spreadBytes) / fullBytes).toFixed(2)}× the full (every page of pgbench_accounts changes)`,
      },
      {
        name: 'ssh incremental after 5% slice update (aid <= 5%): time vs full',
        pgbk_s: medI((x) => x.slice.seconds),
        reference_s: fullS,
        ratio: medI((x) => x.slice.seconds) / fullS,
        note: `stored ${(medI((x) => x.sliceBytes) / 1e6).toFixed(1)} MB new = ${(medI((x) => x.sliceBytes) / fullBytes).toFixed(2)}× the full`,
      },
      {
        name: 'ssh restore vs pgBackRest restore --process-max=2: time',
        pgbk_s: medR((x) => x.pgbk.seconds),
        reference_s: medR((x) => x.pgbr.seconds),
        ratio: medR((x) => x.pgbk.seconds) / medR((x) => x.pgbr.seconds),
        note: `median of ${RESTORE_ROUNDS}, chunked tree (files and directories flushed) vs pgBackRest zst; peak RSS ${medR((x) => x.pgbk.rssMb).toFixed(0)} vs ${medR((x) => x.pgbr.rssMb).toFixed(0)} MB, CPU s ${medR((x) => x.pgbk.cpuS).toFixed(1)} vs ${medR((x) => x.pgbr.cpuS).toFixed(1)}; ${loadNote()}`,
      },
      ...(BASELINE_CLI === undefined
        ? []
        : [
            {
              name: 'ssh restore of the baseline build vs pgBackRest restore --process-max=2: time',
              pgbk_s: medR((x) => x.baseline!.seconds),
              reference_s: medR((x) => x.pgbr.seconds),
              ratio: medR((x) => x.baseline!.seconds) / medR((x) => x.pgbr.seconds),
              note: `${BASELINE_CLI}, same rounds; CPU s ${medR((x) => x.baseline!.cpuS).toFixed(1)}`,
            },
          ]),
      {
        name: 'ssh stored by the slice incremental vs the full',
        pgbk_s: medI((x) => x.sliceBytes) / 1e6,
        reference_s: fullBytes / 1e6,
        ratio: medI((x) => x.sliceBytes) / fullBytes,
        note: 'MB, not seconds',
      },
    ];
  } finally {
    if (KEEP !== undefined) await runProcess('cp', ['-a', w.root, KEEP]);
    await w.destroy();
  }
}
