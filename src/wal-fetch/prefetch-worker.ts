/**
 * The background half of `pgbk wal-fetch`: a detached process, started by a Node wal-fetch that
 * served a segment (and again whenever none is alive), that keeps the spool (spool.ts) filled with
 * the next `count` segments, decompressed and verified, ahead of the newest one PostgreSQL took.
 *
 * Each segment goes straight into pg_wal where it can (placement.ts: PostgreSQL reads it
 * in place), else into the spool. restore_command's shell fast path (fast-path.ts) takes both
 * without starting Node, so the worker learns PostgreSQL's position from the spool itself: a
 * segment it saw spooled that has disappeared was consumed (renamed into pg_wal), and so was a
 * placement the fast path marked NAME.used. The Node path, used for every miss, writes
 * `.want.json` with the segment it served, which resets the position (and the timeline).
 *
 * Conservative on purpose — anything unusual is left to the Node path, which reads the archive and
 * reports errors with the exit status PostgreSQL needs:
 * - it prefetches only on the timeline of the segment the Node path last served; a timeline
 *   switch is seen there first (PostgreSQL asks for the new timeline's segment, the spool misses);
 * - it stops at the first segment that is not archived, and at any read error (it logs it to
 *   `.worker.log`; the foreground wal-fetch will fail on the same file and stop recovery);
 * - it exits when nothing was consumed for a while (the archive ended, or PostgreSQL paused at the
 *   target), when the spool is removed (recovery_end_command), or on SIGTERM. Exiting only costs
 *   speed: the next miss starts a new worker.
 *
 * Run as a script: node prefetch-worker.js '<json WorkerArgs>'.
 */

import { appendFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { PgbkError } from '../errors.js';
import { parseSegmentName, segmentNameFrom, segmentNumber } from '../pg/wal-name.js';
import { yieldToRecovery } from './priority.js';
import { advancePastConsumed } from './spool-position.js';
import { canPlaceInPgWal, prefetchInto, prunePgWalTemps } from './placement.js';
import { claimWorker, PENDING_SUFFIX, pruneSpool, readWant, releaseWorker, spoolView, WORKER_LOG_FILE } from './spool.js';

export interface WorkerArgs {
  readonly spool: string;
  readonly server: string;
  /** The --config given to wal-fetch (undefined: PGBK_CONFIG / discovery from cwd). */
  readonly configPath?: string;
  readonly cwd: string;
  /**
   * The data directory's pg_wal, when the spool is that directory's `.pgbk-spool` and %p was
   * pg_wal/RECOVERYXLOG: segments are then placed there (placement.ts) where it can.
   */
  readonly pgWal?: string;
}

/** Exit when nothing was consumed for this long and the next segment is not archived. */
const IDLE_AT_END_MS = 10_000;
/** Exit when nothing was consumed for this long at all (PostgreSQL paused, or very slow). */
const IDLE_MS = 120_000;
/** How often the spool is looked at when there is nothing to do. */
const POLL_MS = 20;
/** How often a segment that is not archived yet is looked for again. */
const MISSING_RETRY_MS = 500;
/** Segments read, decompressed and written at the same time. */
const MAX_IN_FLIGHT = 3;
const MAX_IN_FLIGHT_OBJECT_STORE = 6;

async function log(spool: string, line: string): Promise<void> {
  try {
    await appendFile(path.join(spool, WORKER_LOG_FILE), `${new Date().toISOString()} pid ${process.pid}: ${line}\n`);
  } catch {
    // the spool is gone: nothing to report to
  }
}

/** Where PostgreSQL is and what the worker has seen spooled on that timeline. */
interface Position {
  timeline: number;
  segSize: number;
  count: number;
  /** Segment number PostgreSQL consumed last (served by Node or taken from the spool). */
  segno: number;
  /** Names on `timeline` seen in the spool; one that disappears was consumed. */
  readonly seen: Set<string>;
}

export async function runPrefetchWorker(args: WorkerArgs): Promise<void> {
  const { spool, server } = args;
  if (!(await claimWorker(spool))) return;
  yieldToRecovery();
  let stopping = false;
  process.once('SIGTERM', () => {
    stopping = true;
  });
  try {
    const { loadConfig } = await import('../config/load.js');
    const { writeArchivedWal } = await import('../catalog/wal-archive.js');
    const { frameBound } = await import('../catalog/zstd-frame.js');
    const desired = await loadConfig({
      ...(args.configPath === undefined ? {} : { configPath: args.configPath }),
      cwd: args.cwd,
      env: process.env,
    });
    if (desired.s3 !== undefined) (await import('../catalog/open.js')).registerS3Catalog(desired.s3);
    // An object store answers each GET after a round trip: more of them in parallel keep the
    // spool ahead of PostgreSQL (the SDK's connections are reused).
    const maxInFlight = desired.s3 === undefined ? MAX_IN_FLIGHT : MAX_IN_FLIGHT_OBJECT_STORE;
    // Straight into pg_wal where it can (PostgreSQL then reads the segment in place); else the spool.
    const pgWal = args.pgWal !== undefined && (await canPlaceInPgWal(spool, args.pgWal)) ? args.pgWal : undefined;
    if (pgWal !== undefined) await prunePgWalTemps(pgWal);
    let seenAt = '';
    let pos: Position | undefined;
    let lastProgress = Date.now();
    let missing: { readonly name: string; readonly since: number } | undefined;
    const inflight = new Map<string, Promise<void>>();
    /** Segments spooled a second time for the end of recovery (at most once each). */
    const respooled = new Set<string>();
    /** Read, verify and spool one segment; 'absent' when it is not archived (or not usable). */
    const fetchOne = async (name: string, segSize: number): Promise<'spooled' | 'absent'> => {
      const pending = path.join(spool, `${name}${PENDING_SUFFIX}`);
      await writeFile(pending, '', { mode: 0o600 });
      try {
        return await spoolOne(name, segSize);
      } finally {
        await rm(pending, { force: true });
      }
    };
    // Stored bytes are read into buffers kept for the next segments (one per fetch in flight):
    // fresh memory for each segment's ~2-5 MB was paged in as it was written, ~15 ms a segment
    // on this machine kind, as much as decoding it (bench/RESULTS, session 24).
    const idleBuffers: Buffer[] = [];
    const spoolOne = async (name: string, segSize: number): Promise<'spooled' | 'absent'> => {
      // Decompressed straight into the temp file in pg_wal or the spool (no 16 MiB Buffer: the copy
      // out of the decoder's memory was most of a segment's time); published only once whole and checked.
      let problem: string | undefined;
      const fill = async (fd: number): Promise<number> => {
        const wanted = frameBound(segSize); // storedBufferFor's size
        let storedInto = idleBuffers.pop();
        if (storedInto !== undefined && storedInto.length !== wanted) storedInto = undefined; // another segment size
        storedInto ??= Buffer.allocUnsafe(wanted);
        let length: number;
        try {
          length = await writeArchivedWal(desired.catalog, server, name, fd, { storedInto });
        } finally {
          idleBuffers.push(storedInto);
        }
        if (length !== segSize) {
          problem = `${length} bytes, expected ${segSize}`;
          throw new Error(problem);
        }
        return length;
      };
      try {
        await prefetchInto(spool, pgWal, name, fill);
        return 'spooled';
      } catch (err) {
        if (problem !== undefined) {
          await log(spool, `${name}: ${problem}; not prefetching past it`);
        } else if (err instanceof PgbkError && err.code === 'NOT_FOUND') {
          // not archived (yet)
        } else if (err instanceof PgbkError) {
          // Corrupt or unreadable: never spooled; the foreground wal-fetch reports it and stops recovery.
          await log(spool, `${name}: ${err.message}; not prefetching past it`);
        } else {
          throw err; // the spool itself (gone, full): handled by the caller
        }
        return 'absent';
      }
    };
    while (!stopping) {
      const want = await readWant(spool);
      if (want === undefined || want.server !== server) break;
      if (want.at !== seenAt) {
        seenAt = want.at;
        const parsed = parseSegmentName(want.name);
        if (parsed === undefined) break;
        const segno = segmentNumber(want.name, want.segSize);
        if (pos === undefined || pos.timeline !== parsed.timeline || pos.segSize !== want.segSize) {
          pos = { timeline: parsed.timeline, segSize: want.segSize, count: want.count, segno, seen: new Set() };
        } else {
          pos.segno = segno;
          pos.count = want.count;
        }
        lastProgress = Date.now();
        missing = undefined;
      }
      if (pos === undefined) break;
      const view = await spoolView(spool);
      if (view === undefined) break; // recovery ended: the spool was removed
      const { waiting: present, held } = view;
      const advanced = advancePastConsumed(pos, present);
      if (advanced) {
        lastProgress = Date.now();
        missing = undefined;
        await pruneSpool(spool, segmentNameFrom(pos.timeline, pos.segno, pos.segSize));
      }

      const idleFor = Date.now() - lastProgress;
      if (idleFor > IDLE_MS || (missing !== undefined && idleFor > IDLE_AT_END_MS)) break;
      // Start fetches for the window's segments not spooled yet, in order, a few at a time: the
      // file writes of one overlap the decompression of the next.
      const cur = pos;
      for (let i = 1; i <= cur.count && inflight.size < maxInFlight; i++) {
        const name = segmentNameFrom(cur.timeline, cur.segno + i, cur.segSize);
        if (held.has(name)) {
          if (present.has(name)) cur.seen.add(name);
          continue;
        }
        if (inflight.has(name)) continue;
        if (missing !== undefined && name >= missing.name && Date.now() - missing.since < MISSING_RETRY_MS) break;
        const job = fetchOne(name, cur.segSize)
          .then(
            (outcome) => {
              if (outcome === 'spooled') {
                if (pos === cur) cur.seen.add(name);
                if (missing?.name === name) missing = undefined;
              } else if (missing === undefined || name < missing.name || missing.name === name) {
                missing = { name, since: Date.now() };
              }
            },
            async (err: unknown) => {
              await log(spool, `${name}: cannot spool: ${(err as Error).message}`);
              missing = { name, since: Date.now() };
            },
          )
          .finally(() => inflight.delete(name));
        inflight.set(name, job);
      }
      // The end of the archive (the segment after the last one consumed is not there): PostgreSQL
      // then ends recovery and reads that last segment once more, to start the new timeline from
      // it. Spooled again (once) that read is a hit as well, not a Node start.
      const last = segmentNameFrom(cur.timeline, cur.segno, cur.segSize);
      if (
        missing?.name === segmentNameFrom(cur.timeline, cur.segno + 1, cur.segSize) &&
        !respooled.has(last) &&
        !held.has(last) &&
        !inflight.has(last) &&
        inflight.size < maxInFlight
      ) {
        respooled.add(last);
        const again = fetchOne(last, cur.segSize)
          .then(
            () => undefined,
            (err: unknown) => log(spool, `${last}: cannot spool again: ${(err as Error).message}`),
          )
          .finally(() => inflight.delete(last));
        inflight.set(last, again);
      }
      await Promise.race([sleep(POLL_MS), ...inflight.values()]);
    }
    await Promise.allSettled(inflight.values());
  } catch (err) {
    // ENOENT here usually means recovery ended and the spool was removed.
    await log(spool, `stopping: ${(err as Error).message}`);
  } finally {
    await releaseWorker(spool);
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const raw = process.argv[2] ?? '';
  let args: WorkerArgs | undefined;
  try {
    args = JSON.parse(raw) as WorkerArgs;
  } catch {
    args = undefined;
  }
  if (args === undefined || typeof args.spool !== 'string' || typeof args.server !== 'string' || typeof args.cwd !== 'string') {
    process.stderr.write('prefetch-worker: expected one JSON argument {spool, server, cwd, configPath?}\n');
    process.exitCode = 2;
  } else {
    void runPrefetchWorker(args);
  }
}
