/**
 * PostgreSQL WAL file names (xlog_internal.h: XLogFileName, XLogFromFileName, IsXLogFileName …).
 * Pure: no I/O.
 *
 * A segment name is TTTTTTTTLLLLLLLLSSSSSSSS in upper-case hex: timeline, "log" (the high 32 bits
 * of the LSN) and the segment within that log. A log holds 0x100000000 / segSize segments, so with
 * the default 16 MiB segments the last three hex digits of SSSSSSSS stay 000000xx and the name
 * wraps from …000000FF to the next log's …00000000.
 */

import { PgbkError } from '../errors.js';
import type { IncomingKind } from '../model/types.js';

export interface SegmentName {
  readonly timeline: number;
  readonly log: number;
  readonly seg: number;
}

const SEGMENT_RE = /^[0-9A-F]{24}$/;
const HISTORY_RE = /^[0-9A-F]{8}\.history$/;
const BACKUP_RE = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;
const PARTIAL_RE = /^[0-9A-F]{24}\.partial$/;

export const MIN_SEGMENT_SIZE = 1024 * 1024;
export const MAX_SEGMENT_SIZE = 1024 * 1024 * 1024;
/** PostgreSQL's default wal_segment_size: assumed for a server whose identity is not recorded yet. */
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

/** PostgreSQL accepts wal_segment_size only as a power of two between 1 MiB and 1 GiB. */
export function isValidSegmentSize(segSize: number): boolean {
  return Number.isInteger(segSize) && segSize >= MIN_SEGMENT_SIZE && segSize <= MAX_SEGMENT_SIZE && (segSize & (segSize - 1)) === 0;
}

function segmentsPerLog(segSize: number): number {
  if (!isValidSegmentSize(segSize)) {
    throw new PgbkError('WAL', `invalid WAL segment size ${segSize}`, {
      hint: 'PostgreSQL segment sizes are powers of two from 1 MiB to 1 GiB',
    });
  }
  return 0x100000000 / segSize;
}

/** 24 upper-case hex digits (PostgreSQL always writes %08X%08X%08X). */
export function isSegmentName(name: string): boolean {
  return SEGMENT_RE.test(name);
}

/** Timeline history file, e.g. "00000002.history". */
export function isHistoryName(name: string): boolean {
  return HISTORY_RE.test(name);
}

/** Backup history file, e.g. "000000010000000000000002.00000028.backup". */
export function isBackupHistoryName(name: string): boolean {
  return BACKUP_RE.test(name);
}

/** A segment archived as .partial (the old timeline's last segment at promotion, pg_receivewal). */
export function isPartialName(name: string): boolean {
  return PARTIAL_RE.test(name);
}

/** Timeline, log and segment of a 24-hex segment name; undefined if it is not one (timeline 0 is invalid). */
export function parseSegmentName(name: string): SegmentName | undefined {
  if (!isSegmentName(name)) return undefined;
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  if (timeline === 0) return undefined;
  return {
    timeline,
    log: Number.parseInt(name.slice(8, 16), 16),
    seg: Number.parseInt(name.slice(16, 24), 16),
  };
}

/**
 * XLogSegNo of a segment name (XLogFromFileName). Fits a JS number: at most 2^32 × 4096 < 2^53.
 * Accepts a segment name or a .partial/.backup name (their first 24 characters).
 */
export function segmentNumber(name: string, segSize: number): number {
  const parsed = parseSegmentName(name.slice(0, 24));
  if (parsed === undefined) throw new PgbkError('WAL', `not a WAL segment name: "${name}"`);
  const perLog = segmentsPerLog(segSize);
  if (parsed.seg >= perLog) {
    throw new PgbkError(
      'WAL',
      `WAL segment name "${name}" is impossible with ${segSize}-byte segments (segment part ≥ 0x${perLog.toString(16).toUpperCase()})`,
    );
  }
  return parsed.log * perLog + parsed.seg;
}

function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** Segment name for a timeline and XLogSegNo (XLogFileName). */
export function segmentNameFrom(timeline: number, segno: number, segSize: number): string {
  const perLog = segmentsPerLog(segSize);
  if (!Number.isSafeInteger(segno) || segno < 0 || segno / perLog >= 0x100000000) {
    throw new PgbkError('WAL', `WAL segment number ${segno} is out of range`);
  }
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) {
    throw new PgbkError('WAL', `timeline ${timeline} is out of range`);
  }
  return hex8(timeline) + hex8(Math.floor(segno / perLog)) + hex8(segno % perLog);
}

/** History file name for a timeline (TLHistoryFileName). */
export function historyNameFor(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

/**
 * Directory (relative to the catalog's wal/) holding an archived file. Segments, .partial and
 * .backup files go under their TTTTTTTTLLLLLLLL prefix, so one directory holds at most one log's
 * worth of segments (256 with 16 MiB segments). Timeline .history files have no log part: like
 * Barman's wals/, they sit at the top of wal/ (returned as ""), where restore finds them by name.
 */
export function walDirName(name: string): string {
  if (isHistoryName(name)) return '';
  if (isSegmentName(name) || isPartialName(name) || isBackupHistoryName(name)) return name.slice(0, 16);
  throw new PgbkError('WAL', `not a WAL archive file name: "${name}"`);
}

/**
 * What a file dropped into incoming/ is. Names a writer is still working on are "in-flight" and
 * must be left alone: dot-files (rsync's ".NAME.Xa8d2k", pgbk's own ".NAME.tmp-…"), "*.tmp"
 * and editor-style "*~". Anything else that is not a WAL archive name is "unknown".
 */
export function classifyIncoming(name: string): IncomingKind {
  if (name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('~')) return 'in-flight';
  if (isSegmentName(name)) return 'segment';
  if (isHistoryName(name)) return 'history';
  if (isBackupHistoryName(name)) return 'backup';
  if (isPartialName(name)) return 'partial';
  return 'unknown';
}
