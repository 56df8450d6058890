/**
 * WAL replay through `pgbk wal-fetch` vs the same replay from a local pg_wal (issue 13 item 4:
 * ≤ 1.2×; 1.41× in the first release). One base backup of a `pgbench -i -s N` cluster
 * (PGBK_BENCH_REPLAY_SCALE, default 10), then pgbench until PGBK_BENCH_REPLAY_SEGMENTS (default
 * 200) segments of WAL follow it, all archived by pgbk (the --print-archive-command fast path).
 * Each round restores the backup twice (untimed) and times `pg_ctl start` until the server is out
 * of recovery:
 *  - pgbk: restore_command = pgbk's shell fast path over the prefetch worker's spool (`pgbk
 *    wal-fetch` on a miss), recovery to the end of the archive, then promotion;
 *  - reference: the same segments decompressed into pg_wal beforehand, no recovery.signal: plain
 *    crash recovery from backup_label over pg_wal.
 * PGBK_BENCH_REPLAY_ROUNDS rounds (default 3), the order alternating; medians and their ratio.
 * The set-up and each round hold the heavy-work lock (bench/lock.ts), released between rounds (the
 * machine is shared with test runs).
 */

import { appendFile, chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readBackups } from '../src/catalog/backups.js';
import { listArchivedWal, readArchivedWal } from '../src/catalog/wal-archive.js';
import { isCopied } from '../src/model/types.js';
import { putInSpool, SPOOL_DIR_NAME } from '../src/wal-fetch/spool.js';
import { CLI } from '../test/support/pgbk.js';
import { chownToPostgres, PG_BINDIR, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../test/support/postgres.js';
import { withHeavyLock } from './lock.js';
import { runProcess, sleep, timed } from './process.js';
import type { BenchResult } from './restore.js';

const SERVER = 'bench';
const SCALE = Number(process.env['PGBK_BENCH_REPLAY_SCALE'] ?? '10');
const SEGMENTS = Number(process.env['PGBK_BENCH_REPLAY_SEGMENTS'] ?? '200');
const ROUNDS = Math.max(1, Number(process.env['PGBK_BENCH_REPLAY_ROUNDS'] ?? '3'));
/**
 * PGBK_BENCH_REPLAY_PARTS=1 adds two rounds per round that split the difference (for the record, no
 * target): archive recovery over the same segments in pg_wal with restore_command `exit 1` (what
 * archive recovery itself costs: restartpoints, a shell per segment), and pgbk with every segment
 * spooled before the start (the fast path alone, no prefetch worker competing for the CPU).
 */
const PARTS = process.env['PGBK_BENCH_REPLAY_PARTS'] === '1';
/**
 * PGBK_BENCH_REPLAY_BEFORE_CLI=/path/to/other/dist/src/cli.js adds a round per round restored with
 * that build (its restore_command, fast path and prefetch worker): before/after in the same rounds.
 */
const BEFORE_CLI = process.env['PGBK_BENCH_REPLAY_BEFORE_CLI'];

function loadNote(): string {
  return `load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Run `fn` holding the machine-wide heavy-work lock (bench/lock.ts: /tmp/pgbk-heavy.lock unless
 * PGBK_BENCH_LOCK names another, '' for none). It used to be taken only when PGBK_BENCH_LOCK was
 * set, so a plain `npm run bench -- replay` timed its rounds while other sessions' tests ran.
 */
export function underBenchLock<T>(fn: () => Promise<T>): Promise<T> {
  return withHeavyLock(fn);
}

function psqlArgs(c: TestCluster): string[] {
  return ['-h', c.socketDir, '-p', String(c.port), '-U', 'postgres'];
}

/** PGBK_BENCH_REPLAY_PROFILE=FILE: append each wal-fetch round's server log (its "restored log file" lines carry times) there. */
const PROFILE = process.env['PGBK_BENCH_REPLAY_PROFILE'];

/** Start PostgreSQL on `dir` and time it until it is out of recovery. */
async function timeToPrimary(dir: string, keepLog: boolean): Promise<number> {
  let c: TestCluster | undefined;
  try {
    return await timed(async () => {
      c = await startClusterOn(dir, { conf: { archive_mode: 'off', log_min_messages: 'log' }, wait: false });
      await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 3_600_000);
    });
  } finally {
    const cluster = c as TestCluster | undefined;
    if (keepLog && PROFILE !== undefined && cluster !== undefined) await appendFile(PROFILE, `--- ${dir}\n${cluster.logTail(1_000_000)}\n`);
    await cluster?.destroy();
  }
}

export async function benchReplay(): Promise<BenchResult[]> {
  const root = await tempDir('pgbk-bench-replay-');
  const catalog = path.join(root, 'catalog');
  const config = path.join(root, 'pgbk.yaml');
  const restoreWith = (cli: string, dir: string): Promise<unknown> =>
    runProcess(process.execPath, [cli, 'restore', SERVER, '--config', config, '--target-dir', dir]);
  const restore = (dir: string): Promise<unknown> => restoreWith(CLI, dir);
  try {
    const segments = await underBenchLock(async () => {
      await mkdir(catalog);
      await chownToPostgres(catalog);
      const source = await startCluster({
        archiveCommand: `${process.execPath} ${CLI} wal-push --config ${config} ${SERVER} %p`,
        conf: { max_wal_size: '1GB', checkpoint_timeout: '30min' },
      });
      try {
        await writeFile(config, `catalog: ${catalog}\nservers:\n  ${SERVER}:\n    connection: "${source.conninfo}"\n    retention: { redundancy: 2 }\n`);
        await chmod(config, 0o644);
        // The archiver keeps up with pgbench only through the worker and its shell fast path.
        const printed = await runProcess(process.execPath, [CLI, '--config', config, 'wal-push', '--print-archive-command', '--pgdata', source.pgdata, SERVER]);
        await source.sql(`ALTER SYSTEM SET archive_command = '${printed.stdout.trim().replace(/'/g, "''")}'`);
        await source.sql('SELECT pg_reload_conf()');
        const pgbench = path.join(PG_BINDIR, 'pgbench');
        await runProcess(pgbench, ['-i', '-q', '-s', String(SCALE), ...psqlArgs(source), 'postgres']);
        await source.sql('SELECT pg_switch_wal()');
        await runProcess(process.execPath, [CLI, 'backup', SERVER, '--config', config]);
        const backup = (await readBackups(catalog, SERVER)).filter(isCopied).pop();
        if (backup === undefined) throw new Error('no backup');
        const startLsn = await source.sql('SELECT pg_current_wal_lsn()');
        for (;;) {
          const bytes = Number(await source.sql(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${startLsn}')`));
          if (bytes >= SEGMENTS * 16 * 1048576) break;
          await runProcess(pgbench, ['-n', '-t', '5000', '-c', '2', '-j', '2', '-M', 'prepared', ...psqlArgs(source), 'postgres']);
          await source.sql('CHECKPOINT'); // the next run writes full-page images again, as a busy server does
        }
        const last = await source.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
        await source.sql('SELECT pg_switch_wal()');
        const deadline = Date.now() + 600_000;
        while (!(await listArchivedWal(catalog, SERVER)).segments.includes(last)) {
          if (Date.now() > deadline) throw new Error(`${last} was not archived within 600 s`);
          await sleep(500);
        }
        return (await listArchivedWal(catalog, SERVER)).segments.filter((s) => s >= backup.beginWal);
      } finally {
        await source.destroy();
      }
    });

    const fetchTimes: number[] = [];
    const localTimes: number[] = [];
    const fetchRound = async (i: number): Promise<void> => {
      const dir = path.join(root, `via-fetch-${i}`);
      await restore(dir);
      fetchTimes.push(await timeToPrimary(dir, true));
      await rm(dir, { recursive: true, force: true });
    };
    const beforeTimes: number[] = [];
    const beforeRound = async (i: number): Promise<void> => {
      const dir = path.join(root, `via-fetch-before-${i}`);
      await restoreWith(BEFORE_CLI!, dir);
      beforeTimes.push(await timeToPrimary(dir, false));
      await rm(dir, { recursive: true, force: true });
    };
    const localRound = async (i: number): Promise<void> => {
      const dir = path.join(root, `in-pg-wal-${i}`);
      await restore(dir);
      await rm(path.join(dir, 'recovery.signal'));
      for (const s of segments) await writeFile(path.join(dir, 'pg_wal', s), await readArchivedWal(catalog, SERVER, s));
      await chownToPostgres(dir);
      localTimes.push(await timeToPrimary(dir, false));
      await rm(dir, { recursive: true, force: true });
    };
    const archiveModeTimes: number[] = [];
    const spooledTimes: number[] = [];
    const archiveModeRound = async (i: number): Promise<void> => {
      const dir = path.join(root, `archive-mode-${i}`);
      await restore(dir);
      for (const s of segments) await writeFile(path.join(dir, 'pg_wal', s), await readArchivedWal(catalog, SERVER, s));
      await appendFile(path.join(dir, 'postgresql.auto.conf'), "restore_command = 'exit 1'\nrecovery_end_command = ''\n");
      await chownToPostgres(dir);
      archiveModeTimes.push(await timeToPrimary(dir, false));
      await rm(dir, { recursive: true, force: true });
    };
    const spooledRound = async (i: number): Promise<void> => {
      const dir = path.join(root, `spooled-${i}`);
      await restore(dir);
      const spool = path.join(dir, SPOOL_DIR_NAME);
      await mkdir(spool, { mode: 0o700 });
      for (const s of segments) await putInSpool(spool, s, await readArchivedWal(catalog, SERVER, s));
      await chownToPostgres(dir);
      spooledTimes.push(await timeToPrimary(dir, false));
      await rm(dir, { recursive: true, force: true });
    };
    const load0 = loadNote();
    for (let i = 0; i < ROUNDS; i++) {
      const order = [fetchRound, localRound, ...(BEFORE_CLI === undefined ? [] : [beforeRound]), ...(PARTS ? [archiveModeRound, spooledRound] : [])];
      await underBenchLock(async () => {
        for (const run of i % 2 === 0 ? order : [...order].reverse()) await run(i);
      });
      const before = BEFORE_CLI === undefined ? '' : `, before ${beforeTimes[i]!.toFixed(2)} s`;
      const parts = PARTS ? `, archive recovery from pg_wal ${archiveModeTimes[i]!.toFixed(2)} s, pre-spooled ${spooledTimes[i]!.toFixed(2)} s` : '';
      process.stderr.write(
        `[bench] replay round ${i + 1}: wal-fetch ${fetchTimes[i]!.toFixed(2)} s, pg_wal ${localTimes[i]!.toFixed(2)} s${before}${parts} (${loadNote()})\n`,
      );
    }
    const f = median(fetchTimes);
    const l = median(localTimes);
    const samples = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join('/');
    return [
      {
        name: `replay ${segments.length} archived segments through wal-fetch vs from pg_wal`,
        pgbk_s: f,
        reference_s: l,
        ratio: f / l,
        note: `median of ${ROUNDS} interleaved (wal-fetch ${samples(fetchTimes)}; pg_wal ${samples(localTimes)}); pg_ctl start until out of recovery; pgbench -s ${SCALE}; ${load0} before, ${loadNote()} after`,
      },
      ...(BEFORE_CLI === undefined
        ? []
        : [
            {
              name: 'replay through wal-fetch with the build before (PGBK_BENCH_REPLAY_BEFORE_CLI) vs from pg_wal',
              pgbk_s: median(beforeTimes),
              reference_s: l,
              ratio: median(beforeTimes) / l,
              note: `same rounds: ${BEFORE_CLI} (${samples(beforeTimes)}); after ÷ before ${(f / median(beforeTimes)).toFixed(2)}`,
            },
          ]),
      ...(PARTS
        ? [
            {
              name: 'part of replay: archive recovery (restore_command exit 1) from pg_wal vs crash recovery from pg_wal',
              pgbk_s: median(archiveModeTimes),
              reference_s: l,
              ratio: median(archiveModeTimes) / l,
              note: `for the record: what archive recovery itself adds (${samples(archiveModeTimes)})`,
            },
            {
              name: 'part of replay: every segment spooled before the start vs crash recovery from pg_wal',
              pgbk_s: median(spooledTimes),
              reference_s: l,
              ratio: median(spooledTimes) / l,
              note: `for the record: the fast path without the prefetch worker (${samples(spooledTimes)})`,
            },
          ]
        : []),
    ];
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
