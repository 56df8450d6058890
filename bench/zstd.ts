/**
 * zstd without a compiler (issue 10, item 1): today's codec (src/catalog/zstd.ts: prebuilt native
 * compression and XXH64, zstd's decoder in WebAssembly) against the zstd-napi it replaced (now a
 * devDependency, compiled by `npm ci` where a compiler exists), in the same run, on real WAL:
 *
 * 1. compress MB/s (level 1, content checksum, what wal-push stores);
 * 2. decompress MB/s (what wal-fetch, verify and wal-receive do);
 * 2b. decompress + write a file (what wal-fetch and restore do with the content): ours decodes
 *    straight into the file (decompressToFd), zstd-napi's Buffer is written with writeSync;
 * 3. per-segment wal-push cost: archiveWalBuffer (validate, compress, sha256, write, fsync, link,
 *    SHA256SUMS) with our compression vs with a frame zstd-napi compressed inside the timed part.
 *
 * Each segment is timed for every contender one after another, in an order that rotates from
 * segment to segment and round to round, so that all meet the same load on this shared machine;
 * each figure is the median of the per-round totals, wall and CPU time, with the load average in the
 * note. Rows after the three targets show where the compression time goes (encoder alone, XXH64
 * alone) and the decoders that need no compiler but were not chosen (the native package's own, the
 * zstd CLI), measured in the same run. The WAL is the bench cluster's (pgbench -i, archived by
 * startBenchCluster) read back from its catalog, or PGBK_BENCH_STAGING's segments when set.
 * PGBK_BENCH_ZSTD_SEGMENTS (default 48) and PGBK_BENCH_ZSTD_ROUNDS (default 7) size a run.
 */

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import path from 'node:path';
import { compressBuffer, compressParts, decompressBuffer, decompressToFd, ZSTD_LEVEL } from '../src/catalog/compress.js';
import { archiveWalBuffer, listArchivedWal, readArchivedWal } from '../src/catalog/wal-archive.js';
import { readWalHeader } from '../src/pg/wal-header.js';
import { isSegmentName } from '../src/pg/wal-name.js';
import type { ServerIdentity } from '../src/model/types.js';
import { tempDir } from '../test/support/postgres.js';
import type { World } from '../test/support/pgbk.js';
import { withHeavyLock } from './lock.js';
import type { BenchResult } from './restore.js';

interface NativeZstd {
  Encoder: new (level: number) => { encodeSync(data: Buffer): Buffer };
  Decoder: new () => { decodeSync(data: Buffer): Buffer };
}

interface Napi {
  compress(data: Buffer, params: { compressionLevel: number; checksumFlag: boolean }): Buffer;
  decompress(data: Buffer): Buffer;
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${String(raw)}: expected a positive integer`);
  return n;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function realSegments(world: World | undefined, want: number): Promise<Buffer[]> {
  const staging = process.env['PGBK_BENCH_STAGING'];
  if (staging !== undefined && existsSync(staging)) {
    const names = (await readdir(staging)).filter(isSegmentName).sort().slice(0, want);
    if (names.length > 0) return Promise.all(names.map((n) => readFile(path.join(staging, n))));
  }
  if (world === undefined) throw new Error('no WAL: set PGBK_BENCH_STAGING to a directory of segments, or run with the bench cluster');
  const names = (await listArchivedWal(world.catalog, 'main')).segments;
  // Skip the first few (initdb's, mostly empty); take the bulk-load WAL after them.
  const chosen = names.slice(Math.min(4, Math.max(0, names.length - want))).slice(0, want);
  if (chosen.length === 0) throw new Error('the bench cluster archived no WAL segment');
  return Promise.all(chosen.map((n) => readArchivedWal(world.catalog, 'main', n)));
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;
/** CPU seconds (user + system) of this process since `u0`: steadier than wall time on a shared machine. */
const cpuSeconds = (u0: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(u0);
  return (u.user + u.system) / 1e6;
};

export async function benchZstd(world: World | undefined): Promise<BenchResult[]> {
  let napi: Napi;
  try {
    napi = createRequire(import.meta.url)('zstd-napi') as Napi;
  } catch (err) {
    throw new Error(`zstd-napi (devDependency, the reference) is not built here: ${(err as Error).message}`);
  }
  const napiParams = { compressionLevel: ZSTD_LEVEL, checksumFlag: true };
  const segs = await realSegments(world, envInt('PGBK_BENCH_ZSTD_SEGMENTS', 48));
  const rounds = envInt('PGBK_BENCH_ZSTD_ROUNDS', 7);
  const mib = segs.reduce((n, s) => n + s.length, 0) / 1048576;
  log(`zstd: ${segs.length} real WAL segments (${mib.toFixed(0)} MiB), ${rounds} alternating rounds`);

  // Same frames both ways: each codec reads the other's, and the sizes match.
  const ours = await Promise.all(segs.map((s) => compressBuffer(s, 'zstd')));
  const theirs = segs.map((s) => napi.compress(s, napiParams));
  for (let i = 0; i < segs.length; i++) {
    if (!napi.decompress(ours[i]!).equals(segs[i]!) || !(await decompressBuffer(theirs[i]!, 'zstd')).equals(segs[i]!)) {
      throw new Error(`segment ${i}: the codecs do not read each other's frames`);
    }
  }
  // And the zstd CLI, on real WAL: `zstd -t` and `zstd -d` read ours; we read `zstd -1`'s, written
  // from a file (content size declared) and from a pipe (none declared).
  const cli = (args: readonly string[], input: Buffer): Buffer => {
    const r = spawnSync('zstd', ['-q', ...args], { input, maxBuffer: 4 * input.length + (64 << 20) });
    if (r.status !== 0) throw new Error(`zstd ${args.join(' ')}: exit ${String(r.status)} ${r.stderr.toString()}`);
    return r.stdout;
  };
  for (let i = 0; i < segs.length; i += Math.max(1, Math.floor(segs.length / 6))) {
    cli(['-t'], ours[i]!);
    const sized = cli(['-1', '--check', '-c', '--stream-size', String(segs[i]!.length)], segs[i]!);
    const piped = cli(['-1', '--check', '-c'], segs[i]!);
    for (const [what, ok] of [
      ['zstd -d of ours', cli(['-d', '-c'], ours[i]!).equals(segs[i]!)],
      ["ours of zstd -1's (content size)", (await decompressBuffer(sized, 'zstd')).equals(segs[i]!)],
      ["ours of zstd -1's (from a pipe)", (await decompressBuffer(piped, 'zstd')).equals(segs[i]!)],
    ] as const) {
      if (!ok) throw new Error(`segment ${i}: ${what} differs from the segment`);
    }
  }
  const oursBytes = ours.reduce((n, z) => n + z.length, 0);
  const theirsBytes = theirs.reduce((n, z) => n + z.length, 0);

  const header = readWalHeader(segs[0]!);
  if (header === undefined) throw new Error('the first WAL segment has no long page header');
  const identity: ServerIdentity = {
    systemIdentifier: header.systemIdentifier,
    pgVersion: 150000,
    walSegmentSize: header.segSize,
    firstContact: new Date().toISOString(),
  };
  const names = segs.map((s) => {
    const h = readWalHeader(s);
    if (h === undefined) throw new Error('a WAL segment without a long page header');
    // Page address → segment number (timeline from the header; 1 for a fresh bench cluster).
    const segNo = h.pageAddr / BigInt(h.segSize);
    const perLog = 0x100000000n / BigInt(h.segSize);
    const hex = (n: bigint): string => n.toString(16).toUpperCase().padStart(8, '0');
    return `${hex(BigInt(h.timeline))}${hex(segNo / perLog)}${hex(segNo % perLog)}`;
  });

  const native = createRequire(import.meta.url)('@toondepauw/node-zstd') as NativeZstd;
  const nativeDecoder = new native.Decoder();
  const nativeEncoder = new native.Encoder(ZSTD_LEVEL);
  const xxhash = createRequire(import.meta.url)('@node-rs/xxhash') as { xxh64(data: Uint8Array): bigint };
  const load0 = loadavg();

  const compress = await interleaved(rounds, segs.length, {
    // What wal-push stores: the frame as pieces (the encoder's output not copied; writev).
    ours: (i) => compressParts(segs[i]!, 'zstd'),
    napi: (i) => napi.compress(segs[i]!, napiParams),
    // The same frame copied into one buffer (compress(): for callers that send one buffer).
    whole: (i) => compressBuffer(segs[i]!, 'zstd'),
    // Where our overhead comes from: the encoder alone (no content size, no checksum), XXH64 alone.
    encoder: (i) => nativeEncoder.encodeSync(segs[i]!),
    xxh64: (i) => xxhash.xxh64(segs[i]!),
  });
  const decompress = await interleaved(rounds, segs.length, {
    ours: (i) => decompressBuffer(theirs[i]!, 'zstd'),
    napi: (i) => napi.decompress(theirs[i]!),
    // The alternatives that need no compiler: the native package's own decoder, and the zstd CLI.
    native: (i) => nativeDecoder.decodeSync(theirs[i]!),
    cli: (i) => cli(['-d', '-c'], theirs[i]!),
  });
  const root = await tempDir('pgbk-bench-zstd-');
  const toFile = async (who: string, write: (fd: number) => unknown): Promise<void> => {
    const fd = openSync(path.join(root, `out-${who}`), 'w', 0o600);
    try {
      await write(fd);
    } finally {
      closeSync(fd);
    }
  };
  const endToEnd = await interleaved(rounds, segs.length, {
    ours: (i) => toFile('ours', (fd) => decompressToFd(theirs[i]!, 'zstd', fd, 0, { expectedLength: segs[i]!.length })),
    napi: (i) =>
      toFile('napi', (fd) => {
        const b = napi.decompress(theirs[i]!);
        for (let done = 0; done < b.length; ) done += writeSync(fd, b, done, b.length - done, done);
      }),
  });
  let push: Timings<'ours' | 'napi'>;
  try {
    // A catalog is a directory that exists (archiveWalBuffer opens it, and does not create it).
    const catalogs = new Map<string, string>();
    const catalogFor = async (who: string, round: number): Promise<string> => {
      const key = `${who}-${round}`;
      let dir = catalogs.get(key);
      if (dir === undefined) {
        dir = path.join(root, key);
        await mkdir(dir);
        catalogs.set(key, dir);
      }
      return dir;
    };
    const archive = async (who: 'ours' | 'napi', round: number, i: number, catalog: string): Promise<void> => {
      const opts = { catalog, server: 'main', name: names[i]!, identity, compression: 'zstd' as const };
      const outcome = who === 'ours' ? await archiveWalBuffer(opts, segs[i]!) : await archiveWalBuffer(opts, segs[i]!, napi.compress(segs[i]!, napiParams));
      if (outcome.result !== 'archived') throw new Error(`archiving ${names[i]!} (${who}, round ${round}): ${JSON.stringify(outcome)}`);
    };
    push = await interleaved(
      rounds,
      segs.length,
      { ours: (i, round, dir) => archive('ours', round, i, dir!), napi: (i, round, dir) => archive('napi', round, i, dir!) },
      catalogFor,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  const load = `load average ${load0.map((x) => x.toFixed(1)).join(' ')} at the start, ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} at the end`;
  const mbps = (s: number): string => `${(mib / s).toFixed(0)} MB/s`;
  const perSeg = (s: number): string => `${((s * 1000) / segs.length).toFixed(1)} ms/segment`;
  const row = <K extends string>(name: string, tm: Timings<K | 'napi'>, who: K, unit: (s: number) => string): BenchResult => {
    const o = median(tm[who].wall);
    const n = median(tm.napi.wall);
    return {
      name,
      pgbk_s: o,
      reference_s: n,
      ratio: o / n,
      note: `median of ${rounds} rounds, each segment timed for both in alternating order: ${who} ${unit(o)}, zstd-napi ${unit(n)}; CPU-time ratio ${(median(tm[who].cpu) / median(tm.napi.cpu)).toFixed(2)}; ${load}`,
    };
  };
  return [
    {
      ...row(`zstd compress ${segs.length} segments (native prebuilt, frame as stored, vs zstd-napi)`, compress, 'ours', mbps),
      note: `${row('', compress, 'ours', mbps).note ?? ''}; stored ${(oursBytes / 1048576).toFixed(1)} MiB vs ${(theirsBytes / 1048576).toFixed(1)} MiB`,
    },
    row(`zstd decompress ${segs.length} segments (WebAssembly vs zstd-napi)`, decompress, 'ours', mbps),
    row(`zstd decompress + write file ${segs.length} segments (decompressToFd vs zstd-napi + writeSync)`, endToEnd, 'ours', mbps),
    row(`zstd wal-push per segment (archiveWalBuffer, ${segs.length} segments)`, push, 'ours', perSeg),
    // Not targets: where the time goes, and the alternatives measured in the same run.
    row('zstd (part) compress: the frame copied into one buffer (compress(), not what wal-push stores)', compress, 'whole', mbps),
    row('zstd (part) compress: the native encoder alone, no content size or checksum', compress, 'encoder', mbps),
    row('zstd (part) compress: XXH64 of the content alone (@node-rs/xxhash)', compress, 'xxh64', mbps),
    row('zstd (alternative) decompress: @toondepauw/node-zstd Decoder (streams into a growing vector)', decompress, 'native', mbps),
    row('zstd (alternative) decompress: zstd -d -c CLI per segment (spawn + pipes)', decompress, 'cli', mbps),
  ];
}

interface Timings1 {
  readonly wall: number[];
  readonly cpu: number[];
}
type Timings<K extends string> = Record<K, Timings1>;

/**
 * Time each operation on each segment, the operations one after another on the same segment in an
 * order that rotates from segment to segment and round to round, so that every operation meets the
 * same load on this shared machine; the per-round totals are what the medians are taken of.
 * `context` gives an operation something per (operation, round), e.g. a catalog, untimed.
 */
async function interleaved<K extends string>(
  rounds: number,
  count: number,
  ops: Record<K, (i: number, round: number, context?: string) => unknown>,
  context?: (op: K, round: number) => Promise<string>,
): Promise<Timings<K>> {
  const keys = Object.keys(ops) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, { wall: [] as number[], cpu: [] as number[] }])) as Timings<K>;
  for (let round = 0; round < rounds; round++) {
    const wall = new Map<K, number>(keys.map((k) => [k, 0]));
    const cpu = new Map<K, number>(keys.map((k) => [k, 0]));
    // Each round holds the machine-wide heavy-work lock (bench/lock.ts): no integration test loads
    // the 2 cores while it is timed; the others get their turn between rounds.
    await withHeavyLock(async () => {
      for (let i = 0; i < count; i++) {
        const shift = (i + round) % keys.length;
        const order = [...keys.slice(shift), ...keys.slice(0, shift)];
        if ((i + round) % 2 === 1) order.reverse();
        for (const k of order) {
          const ctx = context === undefined ? undefined : await context(k, round);
          const t0 = process.hrtime.bigint();
          const u0 = process.cpuUsage();
          await ops[k](i, round, ctx);
          cpu.set(k, cpu.get(k)! + cpuSeconds(u0));
          wall.set(k, wall.get(k)! + seconds(t0));
        }
      }
    });
    for (const k of keys) {
      out[k].wall.push(wall.get(k)!);
      out[k].cpu.push(cpu.get(k)!);
    }
  }
  return out;
}
