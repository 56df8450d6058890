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

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeWalPieces, fetchArchivedWal, storedBufferFor } from '../../catalog/wal-archive.js';
import { incomingDir } from '../../catalog/layout.js';
import { localRootOf } from '../../catalog/local-spool.js';
import { PgbkError } from '../../errors.js';
import { parseLsn } from '../../pg/lsn.js';
import { WalBlockSummary } from '../../pg/wal-blocks.js';
import { segmentNameFrom } from '../../pg/wal-name.js';
import { type FeedResult, WalRecordReader, type WalRecord } from '../../pg/wal-records.js';
import type { Transport } from '../../transport/transport.js';

export type WalChanges = { readonly summary: WalBlockSummary; readonly segments: number } | { readonly skipped: string };

export interface WalChangesSource {
  readonly catalog: string;
  readonly server: string;
  readonly transport: Transport;
  /** The data directory on the database host (its pg_wal holds the start segment). */
  readonly pgdata: string;
  readonly pgVersion: number;
  /** The previous backup's timeline: this backup's must be the same. */
  readonly timeline: number;
  readonly segSize: number;
  /** The previous backup's start ("X/Y"). */
  readonly fromLsn: string;
  /** Read no more than this many bytes of WAL (segments × their size): beyond, reading the files costs less. */
  readonly budgetBytes: number;
}

/** Pieces a segment is decoded in (a whole number of WAL pages of any size). */
const PIECE_BYTES = 1 << 20;
/** The start segment's head is read in whole 64 KiB units: a multiple of any WAL page size. */
const HEAD_UNIT = 64 * 1024;
/** How long a segment closed by pg_backup_start's switch may take to be archived. */
const ARCHIVE_WAIT_MS = 10_000;

/**
 * The summary, read in two parts. `start` reads the archived WAL from the previous backup's start
 * on, as far as it is archived — before this backup's start is even known (all of it precedes
 * that start), so that it overlaps the SSH connection, pg_backup_start and the listing.
 * `finish`, given this backup's start, reads the segments archived since (waiting for the ones
 * pg_backup_start's switch closed) and the head of the start segment. Read-only.
 */
export class WalChangesReader {
  private readonly summary = new WalBlockSummary();
  // Every record is wanted (its block references); no CRC: the archive's frames carry checksums,
  // and the head below is WAL the server flushed before its checkpoint for this backup.
  private readonly reader: WalRecordReader;
  private readonly out: Buffer;
  private readonly stored: Buffer;
  private readonly firstSeg: number;
  /** The next segment to read. */
  private nextSeg: number;
  /** This backup's start, once known: records from it on are not summarized. */
  private to = Number.POSITIVE_INFINITY;
  private reachedTo = false;
  /** Why the summary is not usable, once known. */
  private failed: string | undefined;
  private readonly early: Promise<void>;

  private constructor(private readonly src: WalChangesSource) {
    const from = Number(parseLsn(src.fromLsn));
    this.firstSeg = Math.floor(from / src.segSize);
    this.nextSeg = this.firstSeg;
    this.reader = new WalRecordReader({ segSize: src.segSize, startLsn: from, wants: () => true, checkCrc: false, mainData: false });
    this.out = Buffer.allocUnsafe(Math.min(PIECE_BYTES, src.segSize));
    this.stored = storedBufferFor(src.segSize);
    this.early = this.readArchived();
    this.early.catch(() => undefined);
  }

  static start(src: WalChangesSource): WalChangesReader {
    return new WalChangesReader(src);
  }

  private readonly onRecord = (rec: WalRecord): void => {
    if (rec.lsn >= this.to) this.reachedTo = true;
    else this.summary.add(rec);
  };

  private overBudget(lastSeg: number): boolean {
    return (lastSeg - this.firstSeg + 1) * this.src.segSize > this.src.budgetBytes;
  }

  /** Read segments from nextSeg on while they are archived (and up to `until`, exclusive); a failure sets `failed`. */
  private async readArchived(until = Number.POSITIVE_INFINITY): Promise<void> {
    while (this.failed === undefined && this.nextSeg < until) {
      if (this.overBudget(this.nextSeg)) {
        this.failed = `more WAL since the previous backup than ${Math.round(this.src.budgetBytes / 1048576)} MiB (more to read than the changed files)`;
        return;
      }
      const segno = this.nextSeg;
      const name = segmentNameFrom(this.src.timeline, segno, this.src.segSize);
      let r: FeedResult = { ended: false };
      let length: number | undefined;
      try {
        length = await feedStored(this.src, name, this.stored, this.out, (piece, offset) => {
          if (!r.ended) r = this.reader.feedPiece(segno, offset, piece, this.onRecord);
        });
      } catch (err) {
        this.failed = `WAL segment ${name}: ${(err as Error).message}`;
        return;
      }
      if (length === undefined) return; // not archived (yet)
      if (!r.ended) r = this.reader.endOfSegment(segno, length);
      if (r.ended) {
        this.failed = `the WAL ends in ${name} (${r.reason})`;
        return;
      }
      if (this.summary.unusable !== undefined) {
        this.failed = this.summary.unusable;
        return;
      }
      this.nextSeg++;
    }
  }

  /**
   * The summary of [the previous backup's start, `toLsn`) on `timeline`. `waitArchived` waits
   * (up to a bound) until the server has archived a segment: those pg_backup_start's switch closed.
   */
  async finish(toLsn: string, timeline: number | undefined, waitArchived: (name: string, ms: number) => Promise<boolean>): Promise<WalChanges> {
    const src = this.src;
    await this.early;
    if (Math.floor(src.pgVersion / 10000) !== 15) return { skipped: `PostgreSQL ${Math.floor(src.pgVersion / 10000)} (the WAL format read here is 15's)` };
    if (timeline !== src.timeline) return { skipped: `this backup is on timeline ${String(timeline)}, the previous one on ${src.timeline}` };
    const to = Number(parseLsn(toLsn));
    if (!Number.isSafeInteger(to) || Number(parseLsn(src.fromLsn)) > to)
      return { skipped: `the previous backup's start ${src.fromLsn} is not before ${toLsn}` };
    this.to = to;
    const lastSeg = Math.floor(to / src.segSize);
    const segments = lastSeg - this.firstSeg + 1;
    if (this.failed === undefined && this.nextSeg > lastSeg) {
      // Archived already past this backup's start (a busy server): its records were summarized
      // too, which only marks more blocks changed.
      return { summary: this.summary, segments };
    }
    // The segments still to read before the start segment: archived by now, or soon (the one
    // pg_backup_start's switch closed may still be on its way).
    while (this.failed === undefined && this.nextSeg < lastSeg) {
      await this.readArchived(lastSeg);
      if (this.failed !== undefined || this.nextSeg >= lastSeg) break;
      const before = this.nextSeg;
      const name = segmentNameFrom(src.timeline, before, src.segSize);
      if (!(await waitArchived(name, ARCHIVE_WAIT_MS))) return { skipped: `WAL segment ${name} is not in the archive` };
      await this.readArchived(before + 1);
      if (this.failed === undefined && this.nextSeg === before) return { skipped: `WAL segment ${name} is not in the archive` };
    }
    if (this.failed !== undefined) return { skipped: this.failed };
    const head = await readHead(src, lastSeg, to - lastSeg * src.segSize);
    if (typeof head === 'string') return { skipped: head };
    this.reader.feedPiece(lastSeg, 0, head, this.onRecord);
    if (this.summary.unusable !== undefined) return { skipped: this.summary.unusable };
    if (!this.reachedTo) return { skipped: `no complete record at ${toLsn} in the head of ${segmentNameFrom(src.timeline, lastSeg, src.segSize)}` };
    return { summary: this.summary, segments };
  }
}

/** One archived (or incoming/) segment, fed to the reader in pieces; its length, undefined when it is not there. */
async function feedStored(
  src: WalChangesSource,
  name: string,
  stored: Buffer,
  out: Buffer,
  onPiece: (piece: Buffer, offset: number) => void,
): Promise<number | undefined> {
  try {
    return await decodeWalPieces(await fetchArchivedWal(src.catalog, src.server, name, { storedInto: stored }), out, onPiece);
  } catch (err) {
    if (!(err instanceof PgbkError && err.code === 'NOT_FOUND')) throw err;
  }
  // archive_command's copy not archived yet: a complete segment under its own name (written
  // under a temporary name and renamed), else not there.
  if (localRootOf(src.catalog) === undefined) return undefined;
  try {
    const raw = await readFile(path.join(incomingDir(src.catalog, src.server), name));
    if (raw.length !== src.segSize) return undefined;
    onPiece(raw, 0);
    return raw.length;
  } catch {
    return undefined;
  }
}

/**
 * The first `bytes` of segment `segno` from pg_wal and HEAD_UNIT more (the record starting there),
 * in whole HEAD_UNITs, or why not.
 */
async function readHead(req: WalChangesSource, segno: number, bytes: number): Promise<Buffer | string> {
  const name = segmentNameFrom(req.timeline, segno, req.segSize);
  const want = Math.min(req.segSize, (Math.floor(bytes / HEAD_UNIT) + 2) * HEAD_UNIT);
  const file = path.posix.join(req.pgdata, 'pg_wal', name);
  const r = await req.transport.run(['head', '-c', String(want), file]);
  if (r.code !== 0) return `cannot read ${file} on ${req.transport.description}: ${r.stderr.trim() || `exit ${String(r.code)}`}`;
  if (r.stdout.length !== want) return `${file} on ${req.transport.description} is shorter than ${want} bytes`;
  return r.stdout;
}
