/**
 * Where PostgreSQL is in a restore, as a prefetcher learns it from the spool: the shell fast path
 * takes spooled segments without telling anyone, so a segment the prefetcher saw spooled that has
 * disappeared was consumed (renamed into pg_wal). Shared by the local prefetch worker and the
 * remote fetch worker. Pure.
 */

import { segmentNumber } from '../pg/wal-name.js';

export interface SpoolPosition {
  readonly segSize: number;
  /** Newest segment number known consumed (or served). */
  segno: number;
  /** Names seen in the spool and not yet consumed. */
  readonly seen: Set<string>;
}

/** Forget consumed names and move `segno` past them; true when it moved. */
export function advancePastConsumed(pos: SpoolPosition, present: ReadonlySet<string>): boolean {
  let advanced = false;
  for (const name of pos.seen) {
    if (present.has(name)) continue;
    pos.seen.delete(name);
    const segno = segmentNumber(name, pos.segSize);
    if (segno > pos.segno) {
      pos.segno = segno;
      advanced = true;
    }
  }
  return advanced;
}
