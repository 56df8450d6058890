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

export interface WalChangesRequest {
  readonly catalog: string;
  readonly server: string;
  readonly transport: Transport;
  /** The data directory on the database host (its pg_wal holds the start segment). */
  readonly pgdata: string;
  readonly pgVersion: number;
  readonly timeline: number;
  readonly segSize: number;
  /** The previous backup's start and this backup's ("X/Y"). */
  readonly fromLsn: string;
  readonly toLsn: string;
  /** Read no more than this many bytes of WAL (segments × their size): beyond, reading the files costs less. */
  readonly budgetBytes: number;
}

/** Pieces a segment is decoded in (a whole number of WAL pages of any size). */
const PIECE_BYTES = 1 << 20;
/** The start segment's head is read in whole 64 KiB units: a multiple of any WAL page size. */
const HEAD_UNIT = 64 * 1024;

/** One archived (or incoming/) segment, fed to the reader in pieces; its length, undefined when it is not there. */
async function feedStored(
  req: WalChangesRequest,
  name: string,
  stored: Buffer,
  out: Buffer,
  onPiece: (piece: Buffer, offset: number) => void,
): Promise<number | undefined> {
  try {
    return await decodeWalPieces(await fetchArchivedWal(req.catalog, req.server, name, { storedInto: stored }), out, onPiece);
  } catch (err) {
    if (!(err instanceof PgbkError && err.code === 'NOT_FOUND')) throw err;
  }
  // archive_command's copy not archived yet: a complete segment under its own name (written
  // under a temporary name and renamed), else not there.
  if (localRootOf(req.catalog) === undefined) return undefined;
  try {
    const raw = await readFile(path.join(incomingDir(req.catalog, req.server), name));
    if (raw.length !== req.segSize) return undefined;
    onPiece(raw, 0);
    return raw.length;
  } catch {
    return undefined;
  }
}

/** Summarize the WAL in [fromLsn, toLsn); read-only. */
export async function readWalChanges(req: WalChangesRequest): Promise<WalChanges> {
  if (Math.floor(req.pgVersion / 10000) !== 15) return { skipped: `PostgreSQL ${Math.floor(req.pgVersion / 10000)} (the WAL format read here is 15's)` };
  const from = Number(parseLsn(req.fromLsn));
  const to = Number(parseLsn(req.toLsn));
  const { segSize } = req;
  if (!Number.isSafeInteger(to) || from > to) return { skipped: `the previous backup's start ${req.fromLsn} is not before ${req.toLsn}` };
  const firstSeg = Math.floor(from / segSize);
  const lastSeg = Math.floor(to / segSize);
  const headBytes = to - lastSeg * segSize;
  const segments = lastSeg - firstSeg + 1;
  if (segments * segSize > req.budgetBytes) {
    return { skipped: `${segments} WAL segments since the previous backup: more to read than the changed files` };
  }
  const summary = new WalBlockSummary();
  // Every record is wanted (its block references); no CRC: the archive's frames carry checksums,
  // and the head below is WAL the server flushed before its checkpoint for this backup.
  const reader = new WalRecordReader({ segSize, startLsn: from, wants: () => true, checkCrc: false, mainData: false });
  // The record at `to` is complete in the head read below (the server flushed its WAL through the
  // checkpoint record, which comes at or after it): seeing it proves every record before was read.
  let reachedTo = false;
  const onRecord = (rec: WalRecord): void => {
    if (rec.lsn >= to) reachedTo = true;
    else summary.add(rec);
  };
  // The head of the start segment, from the database host, while the archive is read here.
  const head = readHead(req, lastSeg, headBytes);
  head.catch(() => undefined);
  const out = Buffer.allocUnsafe(Math.min(PIECE_BYTES, segSize));
  const stored = storedBufferFor(segSize);
  for (let segno = firstSeg; segno < lastSeg; segno++) {
    const name = segmentNameFrom(req.timeline, segno, segSize);
    let r: FeedResult = { ended: false };
    const length = await feedStored(req, name, stored, out, (piece, offset) => {
      if (!r.ended) r = reader.feedPiece(segno, offset, piece, onRecord);
    });
    if (length === undefined) return { skipped: `WAL segment ${name} is not in the archive` };
    if (!r.ended) r = reader.endOfSegment(segno, length);
    if (r.ended) return { skipped: `the WAL ends in ${name} (${r.reason}), before ${req.toLsn}` };
    if (summary.unusable !== undefined) return { skipped: summary.unusable };
  }
  const bytes = await head;
  if (typeof bytes === 'string') return { skipped: bytes };
  reader.feedPiece(lastSeg, 0, bytes, onRecord);
  if (summary.unusable !== undefined) return { skipped: summary.unusable };
  if (!reachedTo) return { skipped: `no complete record at ${req.toLsn} in the head of ${segmentNameFrom(req.timeline, lastSeg, segSize)}` };
  return { summary, segments };
}

/**
 * The first `bytes` of segment `segno` from pg_wal and HEAD_UNIT more (the record starting there),
 * in whole HEAD_UNITs, or why not.
 */
async function readHead(req: WalChangesRequest, segno: number, bytes: number): Promise<Buffer | string> {
  const name = segmentNameFrom(req.timeline, segno, req.segSize);
  const want = Math.min(req.segSize, (Math.floor(bytes / HEAD_UNIT) + 2) * HEAD_UNIT);
  const file = path.posix.join(req.pgdata, 'pg_wal', name);
  const r = await req.transport.run(['head', '-c', String(want), file]);
  if (r.code !== 0) return `cannot read ${file} on ${req.transport.description}: ${r.stderr.trim() || `exit ${String(r.code)}`}`;
  if (r.stdout.length !== want) return `${file} on ${req.transport.description} is shorter than ${want} bytes`;
  return r.stdout;
}
