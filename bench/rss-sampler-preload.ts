/**
 * `NODE_OPTIONS=--import …/rss-sampler-preload.js` with PGBK_BENCH_RSS_OUT=FILE: the `pgbk backup`
 * process samples its memory every 20 ms (process.memoryUsage and its children's VmRSS from /proc)
 * and writes the samples to FILE (JSON) when it exits. Investigation aid for bench/rss-probe.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env['PGBK_BENCH_RSS_OUT'];
if (out !== undefined && process.argv.includes('backup')) {
  const t0 = Date.now();
  const samples: Record<string, number>[] = [];
  const kb = (pid: number | string, field: string): number => {
    try {
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m === null ? 0 : Number(m[1]) * 1024;
    } catch {
      return 0;
    }
  };
  const children = (): { name: string; rss: number }[] => {
    const r: { name: string; rss: number }[] = [];
    try {
      const pids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      for (const p of pids) {
        let name = '?';
        try {
          name = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
        } catch {}
        r.push({ name, rss: kb(p, 'VmRSS') });
      }
    } catch {}
    return r;
  };
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const s: Record<string, number> = {
      t: Date.now() - t0,
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    };
    for (const c of children()) s[`child_${c.name}`] = Math.max(s[`child_${c.name}`] ?? 0, c.rss);
    samples.push(s);
  }, 20);
  timer.unref();
  process.once('exit', () => {
    writeFileSync(out, JSON.stringify({ hwm: kb('self', 'VmHWM'), samples }));
  });
}
