/**
 * Investigation aid: pgbk's backup into an s3:// catalog at PGBK_PROBE_SCALES (default "10,50"),
 * each backup run with rss-sampler-preload; prints per-backup peaks and writes the samples under
 * PGBK_PROBE_DIR (default /tmp/rss-probe).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, runPgbk } from '../test/support/pgbk.js';
import { PG_BINDIR, tempDir } from '../test/support/postgres.js';
import { rgw } from '../test/support/rgw.js';
import { withHeavyLock } from './lock.js';
import { startSpoolCluster } from './s3.js';
import { runProcess, sleep } from './process.js';

const scales = (process.env['PGBK_PROBE_SCALES'] ?? '10,50').split(',').map(Number);
const reps = Number(process.env['PGBK_PROBE_REPS'] ?? '1');
const outDir = process.env['PGBK_PROBE_DIR'] ?? '/tmp/rss-probe';
const extraNodeOptions = process.env['PGBK_PROBE_NODE_OPTIONS'] ?? '';
const preload = fileURLToPath(new URL('./rss-sampler-preload.js', import.meta.url));
const MB = 1024 * 1024;

await mkdir(outDir, { recursive: true });
await withHeavyLock(async () => {
  const gw = await rgw();
  const root = await tempDir('pgbk-rss-probe-');
  const { spool, cluster } = await startSpoolCluster(root);
  try {
    const cat = await gw.bucket('pgbk/');
    const cfg = path.join(root, 'pgbk.yaml');
    const s3 =
      process.env['PGBK_PROBE_HTTP'] === '1'
        ? `{ endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true, spool: "${spool}" }`
        : `{ endpoint: "${gw.httpsEndpoint}", region: us-east-1, pathStyle: true, tls: { caFile: "${gw.caFile}" }, spool: "${spool}" }`;
    await writeFile(cfg, `catalog: ${cat.url}\ns3: ${s3}\nservers:\n  main:\n    connection: "${cluster.conninfo}"\n    retention: { redundancy: 10 }\n`, {
      mode: 0o644,
    });
    for (const scale of scales) {
      await runProcess(
        path.join(PG_BINDIR, 'pgbench'),
        ['-i', '-q', '-s', String(scale), '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', 'postgres'],
        {},
      );
      await cluster.sql('CHECKPOINT');
      const variants = (process.env['PGBK_PROBE_VARIANTS'] ?? '').split(';');
      for (let rep = 0; rep < reps * variants.length; rep++) {
        const variant = variants[rep % variants.length] ?? '';
        const venv = Object.fromEntries(
          variant
            .split(/\s+/)
            .filter((x) => x.includes('='))
            .map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]),
        );
        await cluster.sql('SELECT pg_switch_wal()');
        await sleep(1000);
        await runPgbk(['--config', cfg, 'apply']);
        const file = path.join(outDir, `s${scale}-${rep}.json`);
        const t0 = Date.now();
        const r = await runProcess('/usr/bin/time', ['-v', process.execPath, CLI, '--config', cfg, 'backup', 'main'], {
          env: { ...venv, NODE_OPTIONS: `--import ${preload} ${extraNodeOptions}`.trim(), PGBK_BENCH_RSS_OUT: file },
        });
        const secs = (Date.now() - t0) / 1000;
        const maxRss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]) / 1024;
        const d = JSON.parse(await readFile(file, 'utf8')) as { hwm: number; samples: Record<string, number>[] };
        const peak = (k: string): number => Math.max(0, ...d.samples.map((s) => s[k] ?? 0)) / MB;
        const keys = [...new Set(d.samples.flatMap((s) => Object.keys(s)))].filter((k) => k !== 't');
        console.log(
          `-s ${scale} rep ${rep} [${variant}]: ${secs.toFixed(2)} s; time -v max ${maxRss.toFixed(0)} MB; node VmHWM ${(d.hwm / MB).toFixed(0)} MB; peaks: ${keys.map((k) => `${k} ${peak(k).toFixed(0)}`).join(', ')}`,
        );
      }
    }
  } finally {
    await cluster.destroy().catch(() => undefined);
  }
});
