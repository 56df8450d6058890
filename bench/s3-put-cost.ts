/**
 * The CPU one archived-WAL PUT costs radosgw, its OSD and the client (session 16, issue 12 item 6):
 * `flock /tmp/pgbk-bench.lock flock /tmp/pgbk-heavy.lock node dist/bench/s3-put-cost.js`.
 * Starts a gateway (test/support/rgw.ts), compresses the segments of PGBK_BENCH_PUT_SEGMENTS (a
 * directory of 16 MiB WAL files; default: synthetic pages ~5:1 like the s3 bench's WAL) as
 * wal-push does, and stores PGBK_BENCH_PUT_N (default 100) frames per variant through the driver's
 * putS3IfAbsent with a few in flight, after one warm-up PUT per connection. Per PUT: wall time, CPU
 * of radosgw, of its OSD and of this process (/proc), and radosgw's context switches (all threads).
 * PGBK_BENCH_PUT_VARIANTS (default `https,http,https,http`): `https` or `http`, with `-I<n>` for n
 * PUTs in flight (default 6) and `-plain` for an unconditional PUT.
 */

import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeContext } from '../src/catalog/s3/client.js';
import { putS3, putS3IfAbsent } from '../src/catalog/s3/write.js';
import { zstdCodec } from '../src/catalog/zstd.js';
import { sha256Hex } from '../src/lib/checksum.js';
import { rgw } from '../test/support/rgw.js';

const SEGMENT = 16 * 1024 * 1024;

/** Pages of 1.6 KiB random bytes then zeros: zstd level 1 keeps ~1/5, as it does of the bench's WAL. */
function syntheticSegment(): Buffer {
  const b = Buffer.alloc(SEGMENT);
  for (let at = 0; at < SEGMENT; at += 8192) randomBytes(1600).copy(b, at);
  return b;
}

function segments(): Buffer[] {
  const dir = process.env['PGBK_BENCH_PUT_SEGMENTS'];
  if (dir === undefined || dir === '') return Array.from({ length: 6 }, syntheticSegment);
  return readdirSync(dir)
    .sort()
    .map((f) => readFileSync(path.join(dir, f)));
}

/** User + system CPU of a process (or one thread: /proc/PID/task/TID) in ms. */
function cpuMs(procDir: string): number {
  const fields = readFileSync(`${procDir}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function contextSwitches(pid: number): number {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      n += Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0) + Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
    } catch {
      // the thread ended
    }
  }
  return n;
}

function osdPids(gatewayDir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'ceph-osd' && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(gatewayDir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function main(): Promise<void> {
  const codec = await zstdCodec();
  const frames = segments().map((s) => {
    const parts = codec.compressParts(s, 1);
    return { parts, sha256: sha256Hex(parts) };
  });
  const g = await rgw();
  const osds = osdPids(g.dir);
  const n = Number(process.env['PGBK_BENCH_PUT_N'] ?? 100);
  const frameMb = frames.reduce((a, f) => a + f.parts.reduce((x, p) => x + p.length, 0), 0) / frames.length / 1e6;
  process.stderr.write(`[put-cost] ${frames.length} frames of ${frameMb.toFixed(2)} MB on average, ${n} PUTs per variant\n`);
  for (const variant of (process.env['PGBK_BENCH_PUT_VARIANTS'] ?? 'https,http,https,http').split(',')) {
    const inFlight = Number(/-I(\d+)/.exec(variant)?.[1] ?? 6);
    const cfg = await g.bucket('wal');
    const ctx = await makeContext(variant.startsWith('https') ? { ...cfg, endpoint: g.httpsEndpoint, caFile: g.caFile } : cfg);
    await Promise.all(Array.from({ length: inFlight }, (_, i) => putS3(ctx, `${cfg.prefix}/warm${i}`, frames[0]!.parts)));
    const pid = g.gatewayPid();
    if (pid === undefined) throw new Error('radosgw is not running');
    const osdCpu = (): number => osds.reduce((a, p) => a + cpuMs(`/proc/${p}`), 0);
    const [csw0, rgw0, osd0, self0, t0] = [contextSwitches(pid), cpuMs(`/proc/${pid}`), osdCpu(), process.cpuUsage(), Date.now()];
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < n) {
          const i = next++;
          const f = frames[i % frames.length]!;
          const key = `${cfg.prefix}/wal/${String(i).padStart(24, '0')}.zst`;
          if (variant.endsWith('-plain')) await putS3(ctx, key, f.parts);
          else await putS3IfAbsent(ctx, key, f.parts, { sha256: f.sha256 });
        }
      }),
    );
    const self = process.cpuUsage(self0);
    const per = (x: number): string => (x / n).toFixed(1);
    process.stderr.write(
      `[put-cost] ${variant}: ${per(Date.now() - t0)} ms/PUT wall; CPU ms/PUT radosgw ${per(cpuMs(`/proc/${pid}`) - rgw0)}, ceph-osd ${per(osdCpu() - osd0)}, client ${per((self.user + self.system) / 1000)} (sys ${per(self.system / 1000)}); radosgw context switches ${per(contextSwitches(pid) - csw0)}/PUT\n`,
    );
    ctx.client.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
