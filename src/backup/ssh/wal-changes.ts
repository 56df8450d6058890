/**
 * The WAL between the previous `ssh` backup's start and this one's, summarized block by block
 * (pg/wal-blocks.ts): which chunks of changed relation files the agent need not read at all. The
 * segments come from the archive (or incoming/, where archive_command dropped them and apply has
 * not archived them yet); the head of this backup's start segment, written but not yet complete,
 * is read from pg_wal on the database host (`head -c`, over the same SSH connection).
 *
 * Every doubt is an answer of "no summary" with the reason, and the backup then reads the changed
 * files as before: PostgreSQL other than 15 (the record format read here), another timeline, a
 * segment missing or damaged, WAL that does not reach this backup's start, more WAL than reading
 * the files would cost, or anything the summary itself does not trust (wal_level minimal, …).
 */

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fetchArchivedWal, isArchived } from '../../catalog/wal-archive.js';
import { incomingDir } from '../../catalog/layout.js';
import { localRootOf } from '../../catalog/local-spool.js';
import { PgbkError } from '../../errors.js';
import { parseLsn } from '../../pg/lsn.js';
import { WalBlockSummary } from '../../pg/wal-blocks.js';
import { segmentNameFrom } from '../../pg/wal-name.js';
import { Worker } from 'node:worker_threads';
import type { FromSummaryWorker, SummaryWorkerData, ToSummaryWorker } from './wal-summary-worker.js';
import type { Transport } from '../../transport/transport.js';

export type WalChanges = { readonly summary: WalBlockSummary; readonly segments: number } | { readonly skipped: string };

/**
 * WAL summarized per byte costs several times what the agent spends reading the same bytes of
 * relation files from the page cache (~5 ms per MiB against ~0.6 on this machine kind, bench/RESULTS
 * session 25), and less than reading them from disk: the WAL is used only when it is at most a
 * quarter of the changed relation files' bytes.
 */
export const WAL_COST_RATIO = 4;
/** WAL segments always worth reading, however small the files (~0.1 s each way). */
const MIN_SEGMENTS = 8;

export interface WalChangesSource {
  readonly catalog: string;
  readonly server: string;
  /** The previous backup's timeline: this backup's must be the same. */
  readonly timeline: number;
  readonly segSize: number;
  /** The previous backup's start ("X/Y"). */
  readonly fromLsn: string;
  /** Bytes of WAL read at most before this backup's start is known. */
  readonly budgetBytes: number;
}

export interface WalChangesEnd {
  /** This backup's start ("X/Y") and timeline. */
  readonly toLsn: string;
  readonly timeline: number | undefined;
  readonly pgVersion: number;
  /** The database host: its pg_wal (under pgdata) holds the start segment. */
  readonly transport: Transport;
  readonly pgdata: string;
  /** Bytes of the changed relation files the summary could leave unread. */
  readonly changedBytes: number;
  /** Wait (up to `ms`) until the server has archived segment `name`: those pg_backup_start's switch closed. */
  waitArchived(name: string, ms: number): Promise<boolean>;
}

/** The start segment's head is read in whole 64 KiB units: a multiple of any WAL page size. */
const HEAD_UNIT = 64 * 1024;
/** How long a segment closed by pg_backup_start's switch may take to be archived. */
const ARCHIVE_WAIT_MS = 10_000;

/** The summarizing thread (wal-summary-worker.ts): one reply per message, in order. */
class SummaryThread {
  private readonly worker: Worker;
  private readonly waiting: { resolve(r: FromSummaryWorker): void; reject(e: Error): void }[] = [];
  private failure: Error | undefined;
  private closed = false;

  constructor(data: SummaryWorkerData) {
    this.worker = new Worker(new URL('./wal-summary-worker.js', import.meta.url), { workerData: data });
    this.worker.on('message', (r: FromSummaryWorker) => this.waiting.shift()?.resolve(r));
    this.worker.on('error', (e: Error) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`WAL summary thread exited ${code}`)));
    // Never what keeps a finished (or failed) backup's process alive. After the listeners:
    // adding a 'message' listener refs the thread again.
    this.worker.unref();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }

  send(m: ToSummaryWorker, transfer: ArrayBuffer[] = []): Promise<FromSummaryWorker> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(m, transfer);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
  }
}

/** Bytes to hand to the thread: their own ArrayBuffer, moved rather than copied. */
function movable(b: Buffer): { bytes: Uint8Array; transfer: ArrayBuffer[] } {
  const own = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : Buffer.from(b);
  return { bytes: own, transfer: [own.buffer as ArrayBuffer] };
}

/**
 * The summary, read in two parts. `start` reads the archived WAL from the previous backup's start
 * on, as far as it is archived — before this backup's start is even known (all of it precedes
 * that start), so that it overlaps the SSH connection, pg_backup_start and the listing; the
 * records are walked on a thread of their own. `finish`, given this backup's start, reads the
 * segments archived since (waiting for the ones pg_backup_start's switch closed) and the head of
 * the start segment. Read-only.
 */
export class WalChangesReader {
  private readonly thread: SummaryThread;
  private readonly firstSeg: number;
  /** The next segment to read. */
  private nextSeg: number;
  /** Why the summary is not usable, once known. */
  private failed: string | undefined;
  private readonly early: Promise<void>;

  private constructor(private readonly src: WalChangesSource) {
    const from = Number(parseLsn(src.fromLsn));
    this.firstSeg = Math.floor(from / src.segSize);
    this.nextSeg = this.firstSeg;
    this.thread = new SummaryThread({ segSize: src.segSize, fromLsn: from });
    this.early = this.readEarly();
    this.early.catch(() => undefined);
  }

  static start(src: WalChangesSource): WalChangesReader {
    return new WalChangesReader(src);
  }

  private maxSegments(budgetBytes: number): number {
    return Math.max(MIN_SEGMENTS, Math.floor(budgetBytes / this.src.segSize));
  }

  /** Too much WAL is not even read: the segment past the budget already exists. */
  private async readEarly(): Promise<void> {
    const beyond = segmentNameFrom(this.src.timeline, this.firstSeg + this.maxSegments(this.src.budgetBytes), this.src.segSize);
    if (await segmentExists(this.src, beyond)) {
      this.failed = `${beyond} is archived: more WAL since the previous backup than is worth reading`;
      return;
    }
    await this.readArchived(this.firstSeg + this.maxSegments(this.src.budgetBytes));
  }

  /**
   * Hand segments from nextSeg on to the thread while they are archived, up to `until`
   * (exclusive), the next one read while the thread walks this one; a failure sets `failed`.
   */
  private async readArchived(until: number): Promise<void> {
    let inFlight: { readonly segno: number; readonly reply: Promise<FromSummaryWorker> } | undefined;
    const settle = async (): Promise<void> => {
      if (inFlight === undefined) return;
      const { segno, reply } = inFlight;
      inFlight = undefined;
      const r = await reply.catch((err: unknown): FromSummaryWorker => ({ kind: 'fed', failed: (err as Error).message }));
      if (r.kind === 'fed' && r.failed !== undefined) this.failed ??= r.failed;
      else this.nextSeg = segno + 1;
    };
    for (let segno = this.nextSeg; this.failed === undefined && segno < until; segno++) {
      const name = segmentNameFrom(this.src.timeline, segno, this.src.segSize);
      let got: SegmentMessage | undefined;
      try {
        got = await fetchSegment(this.src, name, segno);
      } catch (err) {
        await settle();
        this.failed ??= `WAL segment ${name}: ${(err as Error).message}`;
        return;
      }
      await settle();
      if (this.failed !== undefined || got === undefined) return; // not archived (yet)
      const { bytes, transfer } = movable(Buffer.from(got.bytes.buffer, got.bytes.byteOffset, got.bytes.byteLength));
      inFlight = { segno, reply: this.thread.send({ ...got, bytes }, transfer) };
    }
    await settle();
  }

  /** Not needed after all (nothing to leave unread, or the backup failed): stop reading, end the thread. Idempotent. */
  abandon(): void {
    this.failed ??= 'abandoned';
    this.thread.close();
  }

  /** The summary of [the previous backup's start, end.toLsn), or why there is none. */
  async finish(end: WalChangesEnd): Promise<WalChanges> {
    try {
      return await this.finishOn(end);
    } finally {
      this.failed ??= 'finished'; // an early read still going stops at its next segment
      await this.early.catch(() => undefined);
      this.thread.close();
    }
  }

  private async finishOn(end: WalChangesEnd): Promise<WalChanges> {
    const src = this.src;
    const from = Number(parseLsn(src.fromLsn));
    const to = Number(parseLsn(end.toLsn));
    if (Math.floor(end.pgVersion / 10000) !== 15) return { skipped: `PostgreSQL ${Math.floor(end.pgVersion / 10000)} (the WAL format read here is 15's)` };
    if (end.timeline !== src.timeline) return { skipped: `this backup is on timeline ${String(end.timeline)}, the previous one on ${src.timeline}` };
    if (!Number.isSafeInteger(to) || from > to) return { skipped: `the previous backup's start ${src.fromLsn} is not before ${end.toLsn}` };
    const lastSeg = Math.floor(to / src.segSize);
    const segments = lastSeg - this.firstSeg + 1;
    if (segments > this.maxSegments(Math.min(src.budgetBytes, end.changedBytes / WAL_COST_RATIO))) {
      return {
        skipped: `${segments} WAL segments since the previous backup: more than a ${WAL_COST_RATIO}th of the ${Math.round(end.changedBytes / 1048576)} MiB of changed relation files`,
      };
    }
    await this.early;
    // Records from this backup's start on are not summarized (they come in its head, or later).
    await this.thread.send({ kind: 'to', lsn: to });
    const result = async (needTo: boolean): Promise<WalChanges> => {
      const r = await this.thread.send({ kind: 'result' });
      if (r.kind !== 'result') return { skipped: 'the WAL summary thread answered out of turn' };
      const summary = WalBlockSummary.fromState(r.state);
      if (summary.unusable !== undefined) return { skipped: summary.unusable };
      if (needTo && !r.reachedTo)
        return { skipped: `no complete record at ${end.toLsn} in the head of ${segmentNameFrom(src.timeline, lastSeg, src.segSize)}` };
      return { summary, segments };
    };
    if (this.failed === undefined && this.nextSeg > lastSeg) {
      // Archived already past this backup's start (a busy server): its records were summarized
      // too, which only marks more blocks changed.
      return result(false);
    }
    // The segments still to read before the start segment: archived by now, or soon (the one
    // pg_backup_start's switch closed may still be on its way).
    while (this.failed === undefined && this.nextSeg < lastSeg) {
      await this.readArchived(lastSeg);
      if (this.failed !== undefined || this.nextSeg >= lastSeg) break;
      const before = this.nextSeg;
      const name = segmentNameFrom(src.timeline, before, src.segSize);
      if (!(await end.waitArchived(name, ARCHIVE_WAIT_MS))) return { skipped: `WAL segment ${name} is not in the archive` };
      await this.readArchived(before + 1);
      if (this.failed === undefined && this.nextSeg === before) return { skipped: `WAL segment ${name} is not in the archive` };
    }
    if (this.failed !== undefined) return { skipped: this.failed };
    const head = await readHead(end, segmentNameFrom(src.timeline, lastSeg, src.segSize), to - lastSeg * src.segSize, src.segSize);
    if (typeof head === 'string') return { skipped: head };
    const { bytes, transfer } = movable(head);
    const fed = await this.thread.send({ kind: 'plain', segno: lastSeg, bytes, head: true }, transfer);
    if (fed.kind === 'fed' && fed.failed !== undefined) return { skipped: fed.failed };
    return result(true);
  }
}

type SegmentMessage = Extract<ToSummaryWorker, { readonly bytes: Uint8Array }>;

/** One archived (or incoming/) segment as a message for the thread; undefined when it is not there. */
async function fetchSegment(src: WalChangesSource, name: string, segno: number): Promise<SegmentMessage | undefined> {
  try {
    const f = await fetchArchivedWal(src.catalog, src.server, name);
    return { kind: 'stored', segno, name, path: f.path, server: f.server, compression: f.compression, bytes: f.bytes };
  } catch (err) {
    if (!(err instanceof PgbkError && err.code === 'NOT_FOUND')) throw err;
  }
  // archive_command's copy not archived yet: a complete segment under its own name (written
  // under a temporary name and renamed), else not there.
  if (localRootOf(src.catalog) === undefined) return undefined;
  try {
    const raw = await readFile(path.join(incomingDir(src.catalog, src.server), name));
    return raw.length === src.segSize ? { kind: 'plain', segno, bytes: raw, head: false } : undefined;
  } catch {
    return undefined;
  }
}

/** Segment `name` is in the archive or incoming/. */
async function segmentExists(src: WalChangesSource, name: string): Promise<boolean> {
  if (await isArchived(src.catalog, src.server, name).catch(() => false)) return true;
  const root = localRootOf(src.catalog);
  if (root === undefined) return false;
  return stat(path.join(incomingDir(src.catalog, src.server), name)).then(
    (st) => st.size === src.segSize,
    () => false,
  );
}

/**
 * The first `bytes` of segment `name` from pg_wal and HEAD_UNIT more (the record starting there),
 * in whole HEAD_UNITs, or why not.
 */
async function readHead(end: WalChangesEnd, name: string, bytes: number, segSize: number): Promise<Buffer | string> {
  const want = Math.min(segSize, (Math.floor(bytes / HEAD_UNIT) + 2) * HEAD_UNIT);
  const file = path.posix.join(end.pgdata, 'pg_wal', name);
  const r = await end.transport.run(['head', '-c', String(want), file]);
  if (r.code !== 0) return `cannot read ${file} on ${end.transport.description}: ${r.stderr.trim() || `exit ${String(r.code)}`}`;
  if (r.stdout.length !== want) return `${file} on ${end.transport.description} is shorter than ${want} bytes`;
  return r.stdout;
}
