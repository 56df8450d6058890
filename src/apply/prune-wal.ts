import { deleteArchivedWal, readBackups } from '../catalog/index.js';
import { segmentNumber } from '../pg/wal-name.js';
import { PgbkError } from '../errors.js';
import { isCopied, type PruneWalAction } from '../model/types.js';
import type { ActionResult, ExecContext } from './context.js';
import { plural } from '../lib/plural.js';
import { walHolders } from '../plan/wal.js';

/**
 * Delete the archived WAL the plan listed — after re-checking, against the backups on disk now,
 * that no backup that is not FAILED needs any of it (compared by segment number across timelines:
 * conservative, a segment in doubt is kept). A backup taken
 * or un-deleted since the plan was made would otherwise lose its WAL. Which backups hold all WAL
 * after them and which only their own range (standalone pins; with a PITR window, the backups
 * older than its base) is the planner's own rule, walHolders(), at the plan's time.
 */
export async function executePruneWal(ctx: ExecContext, action: PruneWalAction): Promise<ActionResult> {
  const segSize = ctx.identity?.walSegmentSize;
  if (segSize === undefined) throw new PgbkError('CATALOG', 'cannot prune WAL: the server identity is unknown', { server: ctx.server.name });
  const backups = (await readBackups(ctx.catalog, ctx.server.name)).filter(isCopied);
  const holders = walHolders(backups, ctx.server.retention.pitrWindowSeconds, ctx.now);
  // The oldest segment still needed per timeline, and overall (WAL of an older timeline up to the
  // switch point is needed by a backup on a newer timeline).
  let oldestNeeded = Number.POSITIVE_INFINITY;
  for (const b of backups) {
    if (holders.consistentOnly.has(b.id)) continue; // holds only its own range, checked below
    oldestNeeded = Math.min(oldestNeeded, segmentNumber(b.beginWal, segSize));
  }
  const islands = backups.filter((b) => holders.consistentOnly.has(b.id));
  // .backup and .partial files name the segment they belong to: the same rule holds for them.
  const unsafe = [...action.segments, ...action.backupFiles].filter((name) => {
    const n = segmentNumber(name, segSize);
    if (n >= oldestNeeded) return true;
    return islands.some((b) => n >= segmentNumber(b.beginWal, segSize) && n <= segmentNumber(b.endWal, segSize));
  });
  if (unsafe.length > 0) {
    return { action, outcome: 'skipped', detail: `a backup now needs ${unsafe[0]} (the catalog changed since the plan); re-plan` };
  }
  const removed = await deleteArchivedWal(ctx.catalog, ctx.server.name, [...action.segments, ...action.backupFiles]);
  return { action, outcome: 'done', detail: `${plural(removed, 'file')} deleted` };
}
