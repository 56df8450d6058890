/**
 * Read commands at 200 backups (issue 13 item 5): `pgbk list --json` and `pgbk status --json` on a
 * synthetic catalog (bench/synthetic-catalog.ts: 200 daily DONE backups and their archive), beside
 * a bare `node -e 0` start, and the per-command start (the same commands on an empty catalog)
 * minus Node's start. Wall times are the median of RUNS interleaved rounds (each round runs every command once) after one warm-up run (which fills
 * the per-user config cache and WAL index, as any earlier command would have); the cache lives in
 * the benchmark's temp directory (XDG_CACHE_HOME). A cold run (PGBK_NO_CACHE=1) is reported in the
 * note. pgBackRest's `info` is not run: it would need a stanza with 200 backups of its own.
 */

import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../test/support/pgbk.js';
import { tempDir } from '../test/support/postgres.js';
import { runProcess, timed } from './process.js';
import type { BenchResult } from './restore.js';
import { writeSyntheticCatalog } from './synthetic-catalog.js';

const SERVER = 'bench';

/**
 * What `pgbk` runs: package.json's bin (dist/src/cli.cjs since session 17, a CommonJS entry), the
 * start the issue's target is about. The tests' CLI (dist/src/cli.js, an ES module entry) is
 * measured beside it.
 */
function binPath(): string {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: { pgbk: string } };
  return path.join(root, pkg.bin.pgbk);
}
const RUNS = 15;

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
}

interface ReadBenchResult extends BenchResult {
  readonly peak_rss_mb?: number;
}

/** Peak RSS (MB) of one run, from /usr/bin/time -v. */
async function peakRssMb(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const r = await runProcess('/usr/bin/time', ['-v', process.execPath, ...args], { env });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (m?.[1] === undefined) throw new Error(`no peak RSS in /usr/bin/time output:\n${r.stderr.slice(-1000)}`);
  return Number(m[1]) / 1024;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function configText(catalog: string): string {
  return `catalog: ${catalog}\nservers:\n  ${SERVER}:\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 100 }\n`;
}

export async function benchReadCommands(): Promise<ReadBenchResult[]> {
  const backups = 200;
  const segments = envNumber('PGBK_BENCH_READ_SEGMENTS', 20_000);
  const root = await tempDir('pgbk-bench-read-');
  try {
    const catalog = path.join(root, 'catalog');
    writeSyntheticCatalog({ catalog, server: SERVER, backups, segments, firstBackup: new Date('2025-01-01T03:00:00Z') });
    const config = path.join(root, 'pgbk.yaml');
    await writeFile(config, configText(catalog));
    const emptyCatalog = path.join(root, 'empty');
    await mkdir(emptyCatalog);
    const emptyConfig = path.join(root, 'empty.yaml');
    await writeFile(emptyConfig, configText(emptyCatalog));
    const cache = path.join(root, 'cache');
    await mkdir(cache);
    const env = { XDG_CACHE_HOME: cache };

    const list = await runProcess(process.execPath, [CLI, '--config', config, 'list', '--json'], { env });
    const listed = (JSON.parse(list.stdout) as { backups: unknown[] }).backups.length;
    if (listed !== backups) throw new Error(`list --json listed ${listed} backups, expected ${backups}`);

    // Interleaved rounds: each round runs every command once, so load changes hit all alike; medians.
    const commands: Record<string, readonly string[]> = {
      node: ['-e', '0'],
      list: [CLI, '--config', config, 'list', '--json'],
      status: [CLI, '--config', config, 'status', '--json'],
      start: [binPath(), '--config', emptyConfig, 'list', '--json'],
      startCliJs: [CLI, '--config', emptyConfig, 'list', '--json'],
    };
    const times: Record<string, number[]> = { node: [], list: [], status: [], start: [], startCliJs: [] };
    for (const args of Object.values(commands)) await runProcess(process.execPath, args, { env }); // warm-up: page cache, per-user caches
    const load0 = loadavg()[0]!;
    for (let i = 0; i < RUNS; i++) {
      for (const [k, args] of Object.entries(commands)) times[k]!.push(await timed(() => runProcess(process.execPath, args, { env })));
    }
    const load = `load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`;
    const nodeStart = median(times['node']!);
    const results: ReadBenchResult[] = [];
    for (const command of ['list', 'status']) {
      const args = commands[command]!;
      const warm = median(times[command]!);
      const cold = await timed(() => runProcess(process.execPath, args, { env: { ...env, PGBK_NO_CACHE: '1' } }));
      const rss = await peakRssMb(args, env);
      results.push({
        name: `${command} --json: ${backups} backups, ${segments} segments`,
        pgbk_s: warm,
        reference_s: nodeStart,
        ratio: warm / nodeStart,
        peak_rss_mb: rss,
        note: `median of ${RUNS} interleaved rounds; ${((warm - nodeStart) * 1000).toFixed(0)} ms over Node's start; peak RSS ${rss.toFixed(0)} MB; reference: node -e 0; without the per-user caches (PGBK_NO_CACHE=1) ${cold.toFixed(2)} s; ${load}`,
      });
    }
    const start = median(times['start']!);
    const overhead = Math.max(0, start - nodeStart);
    const startCliJs = median(times['startCliJs']!);
    results.push({
      name: 'read command start over node -e 0 (list --json, empty catalog)',
      pgbk_s: overhead,
      reference_s: 0.02,
      ratio: overhead / 0.02,
      note: `seconds over Node's start (${start.toFixed(3)} s vs ${nodeStart.toFixed(3)} s), against the 0.020 s allowed; through the bin (${path.basename(binPath())}); through dist/src/cli.js +${((startCliJs - nodeStart) * 1000).toFixed(1)} ms; ${load}`,
    });
    return results;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
