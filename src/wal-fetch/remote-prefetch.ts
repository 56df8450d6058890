/**
 * Prefetching inside the wal-fetch worker over SSH: keep the next `count` segments after the one
 * PostgreSQL took last in the data directory's spool (`.pgbk-spool`, the format and functions of
 * src/restore/spool.ts), so restore_command's shell fast path hands them over without starting
 * Node. The same rules as the local prefetch worker (src/restore/prefetch-worker.ts):
 * - the position comes from the Node path (each segment the worker served to a client) and from
 *   the spool itself (a segment seen spooled that disappeared was renamed into pg_wal,
 *   a placement marked NAME.used was read in place);
 * - only the served segment's timeline is prefetched; a switch shows up as a spool miss first;
 * - a segment that is not archived (or not usable) is never spooled and is looked for again a
 *   little later; the foreground path reports errors with the exit status PostgreSQL needs.
 */

import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseSegmentName, segmentNameFrom, segmentNumber } from '../pg/wal-name.js';
import { advancePastConsumed } from './spool-position.js';
import { canPlaceInPgWal, prefetchInto, prunePgWalTemps } from './placement.js';
import { bufferFill, discardSpooled, ensureSpoolDir, PENDING_SUFFIX, pruneSpool, spoolView } from './spool.js';
import type { Fetched } from './remote-archive.js';

const MISSING_RETRY_MS = 500;
const MAX_IN_FLIGHT = 3;

interface Position {
  readonly timeline: number;
  readonly segSize: number;
  segno: number;
  readonly seen: Set<string>;
}

export interface PrefetchDeps {
  readonly spool: string;
  /** The data directory's pg_wal: segments are placed there where they can be (placement.ts placeInPgWal). */
  readonly pgWal?: string;
  readonly count: number;
  readonly fetch: (name: string) => Promise<Fetched>;
  readonly log: (line: string) => void;
  /** Called whenever PostgreSQL made progress (a spooled segment was consumed). */
  readonly onProgress: () => void;
}

export class Prefetcher {
  private pos: Position | undefined;
  private spoolMade = false;
  /** Where segments are placed: the data directory's pg_wal once checked usable, else only the spool. */
  private pgWal: string | undefined;
  private stepping: Promise<'ok' | 'gone'> | undefined;
  private readonly inflight = new Map<string, Promise<void>>();
  private missing: { readonly name: string; readonly since: number } | undefined;
  /** Segments spooled by this worker (for the summary in the log). */
  spooledCount = 0;

  constructor(private readonly deps: PrefetchDeps) {}

  /** The Node path served `name` (a full segment): prefetch after it. */
  async served(name: string, segSize: number): Promise<void> {
    const parsed = parseSegmentName(name);
    if (parsed === undefined || this.deps.count <= 0) return;
    if (!this.spoolMade) {
      if (!(await ensureSpoolDir(this.deps.spool))) return;
      this.spoolMade = true;
      if (this.deps.pgWal !== undefined && (await canPlaceInPgWal(this.deps.spool, this.deps.pgWal))) {
        this.pgWal = this.deps.pgWal;
        await prunePgWalTemps(this.pgWal);
      }
    }
    // Whatever is spooled under this name was not taken by the fast path: it is stale now.
    await discardSpooled(this.deps.spool, name);
    await pruneSpool(this.deps.spool, name);
    const segno = segmentNumber(name, segSize);
    if (this.pos === undefined || this.pos.timeline !== parsed.timeline || this.pos.segSize !== segSize) {
      this.pos = { timeline: parsed.timeline, segSize, segno, seen: new Set() };
    } else if (segno > this.pos.segno) {
      this.pos.segno = segno;
    }
    this.missing = undefined;
  }

  /**
   * One pass: notice consumption, start fetches for the window. 'gone' once the spool this worker
   * made was removed (recovery_end_command ran: recovery is over).
   */
  step(): Promise<'ok' | 'gone'> {
    // The main loop and a client's request both step: one pass at a time, or a segment could be
    // started twice between its check and its registration.
    if (this.stepping === undefined) this.stepping = this.pass().finally(() => (this.stepping = undefined));
    return this.stepping;
  }

  private async pass(): Promise<'ok' | 'gone'> {
    const pos = this.pos;
    if (pos === undefined) return 'ok';
    const view = await spoolView(this.deps.spool);
    if (view === undefined) return this.spoolMade ? 'gone' : 'ok';
    const { waiting: present, held } = view;
    const advanced = advancePastConsumed(pos, present);
    if (advanced) {
      this.missing = undefined;
      this.deps.onProgress();
      await pruneSpool(this.deps.spool, segmentNameFrom(pos.timeline, pos.segno, pos.segSize));
    }
    for (let i = 1; i <= this.deps.count && this.inflight.size < MAX_IN_FLIGHT; i++) {
      const name = segmentNameFrom(pos.timeline, pos.segno + i, pos.segSize);
      if (held.has(name)) {
        if (present.has(name)) pos.seen.add(name);
        continue;
      }
      if (this.inflight.has(name)) continue;
      if (this.missing !== undefined && name >= this.missing.name && Date.now() - this.missing.since < MISSING_RETRY_MS) break;
      // The marker goes down before the fetch starts, so that the fast path run right after this
      // pass waits for the segment instead of starting Node.
      const pending = path.join(this.deps.spool, `${name}${PENDING_SUFFIX}`);
      try {
        await writeFile(pending, '', { mode: 0o600 });
      } catch {
        return 'ok'; // the spool is going away
      }
      const job = this.spoolOne(name, pos, pending)
        .catch((err: unknown) => {
          this.deps.log(`${name}: cannot spool: ${(err as Error).message}`);
          this.missing = { name, since: Date.now() };
        })
        .finally(() => this.inflight.delete(name));
      this.inflight.set(name, job);
    }
    return 'ok';
  }

  /** Resolves when any fetch finishes (never, when none runs: the caller races it with a timer). */
  settled(): Promise<void> {
    return this.inflight.size === 0 ? new Promise<void>(() => undefined) : Promise.race(this.inflight.values());
  }

  async drain(): Promise<void> {
    await Promise.allSettled(this.inflight.values());
  }

  private async spoolOne(name: string, pos: Position, pending: string): Promise<void> {
    try {
      const f = await this.deps.fetch(name);
      // The streaming .partial is still growing: never spooled, PostgreSQL asks again later.
      if (f.kind === 'found' && f.streamingPartial !== true && f.data.length === pos.segSize) {
        await prefetchInto(this.deps.spool, this.pgWal, name, bufferFill(f.data));
        this.spooledCount++;
        if (this.pos === pos) pos.seen.add(name);
        if (this.missing?.name === name) this.missing = undefined;
        return;
      }
      if (f.kind === 'fatal') this.deps.log(`${name}: ${f.error}; not prefetching past it`);
      if (this.missing === undefined || name <= this.missing.name) this.missing = { name, since: Date.now() };
    } finally {
      await rm(pending, { force: true });
    }
  }
}
