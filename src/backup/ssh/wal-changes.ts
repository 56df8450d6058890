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
import { decodeWalPieces, fetchArchivedWal, isArchived, storedBufferFor } from '../../catalog/wal-archive.js';
import { incomingDir } from '../../catalog/layout.js';
import { localRootOf } from '../../catalog/local-spool.js';
import { PgbkError } from '../../errors.js';
import { parseLsn } from '../../pg/lsn.js';
import { WalBlockSummary } from '../../pg/wal-blocks.js';
import { segmentNameFrom } from '../../pg/wal-name.js';
import { type FeedResult, WalRecordReader } from '../../pg/wal-records.js';
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

/** Pieces a segment is decoded in (a whole number of WAL pages of any size). */
const PIECE_BYTES = 1 << 20;
/** The start segment's head is read in whole 64 KiB units: a multiple of any WAL page size. */
const HEAD_UNIT = 64 * 1024;
/** How long a segment closed by pg_backup_start's switch may take to be archived. */
const ARCHIVE_WAIT_MS = 10_000;
/** The reader's per-record objects are not made: every record comes through its `raw` callback. */
const viaRaw = (): void => undefined;

/**
 * The summary, read in two parts. `start` reads the archived WAL from the previous backup's start
 * on, as far as it is archived — before this backup's start is even known (all of it precedes
 * that start), so that it overlaps the SSH connection, pg_backup_start and the listing.
 * `finish`, given this backup's start, reads the segments archived since (waiting for the ones
 * pg_backup_start's switch closed) and the head of the start segment. Read-only.
 */
export class WalChangesReader {
  private readonly summary = new WalBlockSummary();
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
    // Every record is wanted (its block references); no CRC: the archive's frames carry
    // checksums, and the head is WAL the server flushed before its checkpoint for this backup.
    this.reader = new WalRecordReader({ segSize: src.segSize, startLsn: from, wants: () => true, checkCrc: false, raw: this.onRaw });
    this.out = Buffer.allocUnsafe(Math.min(PIECE_BYTES, src.segSize));
    this.stored = storedBufferFor(src.segSize);
    this.early = this.readEarly();
    this.early.catch(() => undefined);
  }

  static start(src: WalChangesSource): WalChangesReader {
    return new WalChangesReader(src);
  }

  private readonly onRaw = (buf: Buffer, off: number, totLen: number, lsn: number, rmid: number, info: number): void => {
    if (lsn >= this.to) this.reachedTo = true;
    else this.summary.addRaw(buf, off, totLen, lsn, rmid, info);
  };

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

  /** Read segments from nextSeg on while they are archived, up to `until` (exclusive); a failure sets `failed`. */
  private async readArchived(until: number): Promise<void> {
    while (this.failed === undefined && this.nextSeg < until) {
      const segno = this.nextSeg;
      const name = segmentNameFrom(this.src.timeline, segno, this.src.segSize);
      let r: FeedResult = { ended: false };
      let length: number | undefined;
      try {
        length = await feedStored(this.src, name, this.stored, this.out, (piece, offset) => {
          if (!r.ended) r = this.reader.feedPiece(segno, offset, piece, viaRaw);
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

  /** Not needed after all (nothing to leave unread, or the backup failed): the early read stops at its next segment. */
  abandon(): void {
    this.failed ??= 'abandoned';
  }

  /** The summary of [the previous backup's start, end.toLsn), or why there is none. */
  async finish(end: WalChangesEnd): Promise<WalChanges> {
    const src = this.src;
    const from = Number(parseLsn(src.fromLsn));
    const to = Number(parseLsn(end.toLsn));
    if (Math.floor(end.pgVersion / 10000) !== 15) return { skipped: `PostgreSQL ${Math.floor(end.pgVersion / 10000)} (the WAL format read here is 15's)` };
    if (end.timeline !== src.timeline) return { skipped: `this backup is on timeline ${String(end.timeline)}, the previous one on ${src.timeline}` };
    if (!Number.isSafeInteger(to) || from > to) return { skipped: `the previous backup's start ${src.fromLsn} is not before ${end.toLsn}` };
    const lastSeg = Math.floor(to / src.segSize);
    const segments = lastSeg - this.firstSeg + 1;
    if (segments > this.maxSegments(Math.min(src.budgetBytes, end.changedBytes / WAL_COST_RATIO))) {
      this.failed ??= 'superseded'; // the early read stops at its next segment
      return {
        skipped: `${segments} WAL segments since the previous backup: more than a ${WAL_COST_RATIO}th of the ${Math.round(end.changedBytes / 1048576)} MiB of changed relation files`,
      };
    }
    await this.early;
    this.to = to;
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
      if (!(await end.waitArchived(name, ARCHIVE_WAIT_MS))) return { skipped: `WAL segment ${name} is not in the archive` };
      await this.readArchived(before + 1);
      if (this.failed === undefined && this.nextSeg === before) return { skipped: `WAL segment ${name} is not in the archive` };
    }
    if (this.failed !== undefined) return { skipped: this.failed };
    const head = await readHead(end, segmentNameFrom(src.timeline, lastSeg, src.segSize), to - lastSeg * src.segSize, src.segSize);
    if (typeof head === 'string') return { skipped: head };
    this.reader.feedPiece(lastSeg, 0, head, viaRaw);
    if (this.summary.unusable !== undefined) return { skipped: this.summary.unusable };
    if (!this.reachedTo) return { skipped: `no complete record at ${end.toLsn} in the head of ${segmentNameFrom(src.timeline, lastSeg, src.segSize)}` };
    return { summary: this.summary, segments };
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
