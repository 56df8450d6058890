/**
 * Log sequence numbers: 64-bit byte positions in the WAL stream, written by PostgreSQL as two
 * upper-case hex halves "HI/LO" (%X/%X, no padding). Pure: no I/O.
 */

import { PgbkError } from '../errors.js';
import { isValidSegmentSize, segmentNameFrom } from './wal-name.js';

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const MAX_LSN = (1n << 64n) - 1n;

export function isLsn(text: string): boolean {
  return LSN_RE.test(text);
}

/** "16/B374D848" → 0x16B374D848n. */
export function parseLsn(text: string): bigint {
  const m = LSN_RE.exec(text);
  if (m === null || m[1] === undefined || m[2] === undefined) {
    throw new PgbkError('WAL', `not an LSN: "${text}"`, { hint: 'an LSN looks like 16/B374D848' });
  }
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  checkRange(lsn);
  const hi = lsn >> 32n;
  const lo = lsn & 0xffffffffn;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

function checkRange(lsn: bigint): void {
  if (lsn < 0n || lsn > MAX_LSN) throw new PgbkError('WAL', `LSN ${lsn} is out of range`);
}

function checkSegSize(segSize: number): bigint {
  if (!isValidSegmentSize(segSize)) throw new PgbkError('WAL', `invalid WAL segment size ${segSize}`);
  return BigInt(segSize);
}

/** XLByteToSeg: the segment number holding byte `lsn`. */
export function lsnToSegmentNumber(lsn: bigint, segSize: number): number {
  checkRange(lsn);
  return Number(lsn / checkSegSize(segSize));
}

/** Name of the segment that holds byte `lsn` (XLByteToSeg + XLogFileName): a backup's beginWal. */
export function lsnToSegmentName(lsn: bigint, timeline: number, segSize: number): string {
  return segmentNameFrom(timeline, lsnToSegmentNumber(lsn, segSize), segSize);
}

/**
 * Last segment a backup needs, given its end LSN. PostgreSQL's pg_backup_stop uses XLByteToPrevSeg
 * for the stop WAL file: the end LSN points just past the last byte written, so when it falls
 * exactly on a segment boundary the backup's WAL ends in the previous segment, and the segment
 * starting at endLsn is not needed (it may not even exist yet).
 */
export function endLsnToSegmentName(endLsn: bigint, timeline: number, segSize: number): string {
  checkRange(endLsn);
  if (endLsn === 0n) throw new PgbkError('WAL', 'end LSN 0/0 has no previous segment');
  const segno = Number((endLsn - 1n) / checkSegSize(segSize));
  return segmentNameFrom(timeline, segno, segSize);
}

/** First LSN of segment `segno` (XLogSegNoOffsetToRecPtr with offset 0). */
export function segmentStartLsn(segno: number, segSize: number): bigint {
  return BigInt(segno) * checkSegSize(segSize);
}
