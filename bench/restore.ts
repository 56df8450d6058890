/**
 * Restore benchmarks (issue #3), run by bench/run.ts, never by the tests:
 *
 * 1. `pgbk restore` of a `pgbench -i -s 50` backup (stream + sha256 + zstd -d + tar -x +
 *    pg_verifybackup --skip-checksums + recovery config) vs `zstd -d | tar -xf` of the same stored
 *    files, best of PGBK_BENCH_RUNS (3) interleaved runs each; also, for information, the same
 *    restore with --verify-checksums (pg_verifybackup's full CRC32C pass).
 * 2. Replay of ~500 archived WAL segments through restore_command (its shell fast path over the
 *    prefetch worker's spool, `pgbk wal-fetch` on a miss) vs the same replay with the segments already decompressed in pg_wal
 *    (plain crash recovery from the backup_label). Measured from `pg_ctl start` until the server
 *    accepts connections.
 *
 * PGBK_BENCH_SCALE and PGBK_BENCH_SEGMENTS shrink the run (defaults 50 and 500).
 */

import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBackups } from '../src/catalog/backups.js';
import { compressionOfFile } from '../src/catalog/compress.js';
import { backupDir } from '../src/catalog/layout.js';
import { listArchivedWal, readArchivedWal } from '../src/catalog/wal-archive.js';
import { chownToPostgres, PG_BINDIR, startCluster, startClusterOn, tempDir, waitForQuery } from '../test/support/postgres.js';

export interface BenchResult {
  readonly name: string;
  readonly pgbk_s: number;
  readonly reference_s: number;
  readonly ratio: number;
  readonly note?: string;
}

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli.js');
const SERVER = 'bench';

function run(cmd: string, args: readonly string[], opts: { asPostgres?: boolean } = {}): Promise<string> {
  const [c, a] = opts.asPostgres === true && process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(c as string, a as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}\n${err}`))));
  });
}

/** `zstd -d -c FILE | tar -xf - -C DIR` (or plain tar for uncompressed files), with a pipe between. */
function referenceExtract(file: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const compressed = compressionOfFile(file);
    const dec = compressed === 'zstd' ? spawn('zstd', ['-d', '-c', '-q', file], { stdio: ['ignore', 'pipe', 'inherit'] }) : undefined;
    const tar = spawn('tar', ['-x', '-f', dec === undefined ? file : '-', '-C', dir], {
      stdio: [dec === undefined ? 'ignore' : dec.stdout!, 'ignore', 'inherit'],
    });
    dec?.stdout?.destroy();
    let pending = dec === undefined ? 1 : 2;
    const done = (code: number | null): void => {
      if (code !== 0) reject(new Error(`reference extraction of ${file} failed`));
      else if (--pending === 0) resolve();
    };
    dec?.once('close', done);
    tar.once('close', done);
  });
}

const RUNS = Number(process.env['PGBK_BENCH_RUNS'] ?? 3);

function loadNote(): string {
  return `load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function benchRestore(): Promise<BenchResult[]> {
  const scale = Number(process.env['PGBK_BENCH_SCALE'] ?? 50);
  const wantSegments = Number(process.env['PGBK_BENCH_SEGMENTS'] ?? 500);
  const root = await tempDir('pgbk-bench-restore-');
  const catalog = path.join(root, 'catalog');
  const config = path.join(root, 'pgbk.yaml');
  await mkdir(catalog);
  await chownToPostgres(catalog);
  const source = await startCluster({
    archiveCommand: `${process.execPath} ${CLI} wal-push --config ${config} ${SERVER} %p`,
    conf: { max_wal_size: '1GB', checkpoint_timeout: '30min' },
  });
  const results: BenchResult[] = [];
  try {
    await writeFile(
      config,
      `catalog: ${catalog}\nservers:\n  ${SERVER}:\n    connection: "host=${source.socketDir} port=${source.port} user=postgres dbname=postgres"\n    retention: { redundancy: 2 }\n`,
    );
    await chmod(config, 0o644);
    const pgbench = path.join(PG_BINDIR, 'pgbench');
    await run(pgbench, ['-i', '-q', '-s', String(scale), '-h', source.socketDir, '-p', String(source.port), '-U', 'postgres', 'postgres']);
    await source.sql('SELECT pg_switch_wal()');
    await run(process.execPath, [CLI, 'backup', SERVER, '--config', config]);
    const backup = (await readBackups(catalog, SERVER)).filter((b) => b.status === 'DONE').pop();
    if (backup === undefined) throw new Error('no DONE backup');
    const srcDir = backupDir(catalog, SERVER, backup.id);
    const tars = (await readdir(srcDir)).filter((n) => /\.tar(\.zst|\.gz)?$/.test(n));

    // 1. unpack. The machine is shared: each side runs RUNS times, interleaved, and the best
    // time of each counts (what the code costs, not what the neighbours took from it).
    const refDir = path.join(root, 'ref');
    const pgbkDir = path.join(root, 'restored');
    const fullDir = path.join(root, 'restored-full');
    const refTimes: number[] = [];
    const pgbkTimes: number[] = [];
    const fullTimes: number[] = [];
    const load0 = loadNote();
    for (let i = 0; i < RUNS; i++) {
      await mkdir(refDir, { mode: 0o700 });
      refTimes.push(
        await timed(async () => {
          for (const t of tars) await referenceExtract(path.join(srcDir, t), refDir);
        }),
      );
      await rm(refDir, { recursive: true, force: true });
      pgbkTimes.push(await timed(() => run(process.execPath, [CLI, 'restore', SERVER, '--config', config, '--target-dir', pgbkDir])));
      await rm(pgbkDir, { recursive: true, force: true });
      fullTimes.push(await timed(() => run(process.execPath, [CLI, 'restore', SERVER, '--config', config, '--target-dir', fullDir, '--verify-checksums'])));
      await rm(fullDir, { recursive: true, force: true });
    }
    const refS = Math.min(...refTimes);
    const pgbkS = Math.min(...pgbkTimes);
    const fullS = Math.min(...fullTimes);
    const stored = `${((backup.sizes?.stored ?? 0) / 1048576) | 0} MiB stored`;
    const samples = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join('/');
    results.push({
      name: `restore pgbench -s ${scale} backup (${stored})`,
      pgbk_s: pgbkS,
      reference_s: refS,
      ratio: pgbkS / refS,
      note: `best of ${RUNS} (pgbk ${samples(pgbkTimes)}, ref ${samples(refTimes)}); sha256 of stored tars + pg_verifybackup --skip-checksums; ${load0}`,
    });
    results.push({
      name: `(info) restore --verify-checksums (${stored})`,
      pgbk_s: fullS,
      reference_s: refS,
      ratio: fullS / refS,
      note: `best of ${RUNS} (${samples(fullTimes)}); adds pg_verifybackup's CRC32C pass over every file; ${loadNote()}`,
    });

    // 2. replay: write WAL until enough segments after the backup are archived
    const startSeg = backup.endWal ?? '';
    for (;;) {
      const wal = await listArchivedWal(catalog, SERVER);
      if (wal.segments.filter((s) => s > startSeg).length >= wantSegments) break;
      await run(pgbench, [
        '-n',
        '-t',
        '20000',
        '-c',
        '2',
        '-j',
        '2',
        '-M',
        'prepared',
        '-h',
        source.socketDir,
        '-p',
        String(source.port),
        '-U',
        'postgres',
        'postgres',
      ]);
      await source.sql('CHECKPOINT');
    }
    await source.sql('SELECT pg_switch_wal()');
    await new Promise((r) => setTimeout(r, 3000));
    const wal = await listArchivedWal(catalog, SERVER);
    const segments = wal.segments.filter((s) => s >= (backup.beginWal ?? ''));

    const viaFetch = path.join(root, 'via-fetch');
    await run(process.execPath, [CLI, 'restore', SERVER, '--config', config, '--target-dir', viaFetch]);
    // pg_ctl -w returns once a hot standby accepts read-only connections (at the consistency
    // point, long before the end of replay): wait for the promotion that ends recovery instead.
    const load1 = loadNote();
    const fetchS = await timed(async () => {
      const c = await startClusterOn(viaFetch, { conf: { archive_mode: 'off' } });
      await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 3_600_000);
      await c.destroy();
    });
    await rm(viaFetch, { recursive: true, force: true });

    const inWal = path.join(root, 'in-pg-wal');
    await run(process.execPath, [CLI, 'restore', SERVER, '--config', config, '--target-dir', inWal]);
    // Plain crash recovery from backup_label over a pre-filled pg_wal: no recovery.signal.
    await rm(path.join(inWal, 'recovery.signal'));
    for (const s of segments) {
      await writeFile(path.join(inWal, 'pg_wal', s), await readArchivedWal(catalog, SERVER, s));
    }
    await chownToPostgres(inWal);
    // Crash recovery accepts connections only once all of pg_wal is replayed.
    const localS = await timed(async () => {
      const c = await startClusterOn(inWal, { conf: { archive_mode: 'off' } });
      await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 3_600_000);
      await c.destroy();
    });
    await rm(inWal, { recursive: true, force: true });
    results.push({
      name: `replay ${segments.length} archived segments`,
      pgbk_s: fetchS,
      reference_s: localS,
      ratio: fetchS / localS,
      note: `restore_command (shell fast path + prefetch worker, 8 ahead) vs segments already in pg_wal; ${load1} before, ${loadNote()} after`,
    });
  } finally {
    await source.destroy();
    await rm(root, { recursive: true, force: true });
  }
  return results;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === new URL(`file://${path.resolve(entry)}`).href) {
  benchRestore().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
