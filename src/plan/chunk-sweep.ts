/**
 * Retention of content-addressed chunks (the `ssh` method on object storage; catalog/chunk-store.ts):
 * a mark-and-sweep. Pure: the executor (apply/sweep-chunks.ts), holding the server's lock, notes
 * the time, lists the stored chunks, reads the file list of every retained backup, and asks
 * `chunksToSweep` which chunks may go. The planner itself (`planChunkSweep`) only decides that a
 * sweep is due, and says why, when backups that refer to chunks leave the catalog.
 *
 * A chunk is removed only when all of these hold:
 * - no retained backup refers to it: every backup record not being deleted (DONE, in progress,
 *   FAILED not yet cleaned up) and every backup a restore or drill has marked in use;
 * - it was written before the sweep's listing started, less a margin for the store's clock
 *   (a chunk written after that is someone's new chunk, whatever the listing says);
 * - it was written before the start of every backup still in progress (such a backup has no file
 *   list yet: what it stored is not referenced until it finishes).
 * A retained backup whose file list cannot be read refuses the whole sweep: without its references
 * nothing can be proven unreferenced. The server's lock (held by apply) keeps a backup of the
 * same server from finding a chunk 'exists' while the sweep removes it.
 */

/** A chunk as the listing found it. */
export interface ListedChunk {
  readonly hash: string;
  /** When the store created it (the store's clock). */
  readonly mtime: Date;
}

/** A backup whose chunks must stay. */
export interface RetainedBackup {
  readonly id: string;
  /** DONE: its file list's hashes; 'in-progress': none yet (protected by its start); 'unreadable'. */
  readonly refs: readonly string[] | 'in-progress' | 'unreadable';
  /** ISO; for a backup in progress, chunks written since (less the margin) are kept. */
  readonly beginTime: string;
}

export interface SweepInput {
  readonly listed: readonly ListedChunk[];
  readonly retained: readonly RetainedBackup[];
  /** When the executor started listing (its clock). */
  readonly listingStartedAt: Date;
  /** Allowed difference between the store's clock and ours, ms. */
  readonly clockMarginMs: number;
}

export type SweepDecision =
  | {
      readonly sweep: true;
      /** Hashes to delete, sorted. */
      readonly remove: readonly string[];
      /** Kept because a retained backup refers to them. */
      readonly keptReferenced: number;
      /** Kept, unreferenced, because they are newer than the listing or a backup in progress. */
      readonly keptRecent: number;
      readonly reason: string;
    }
  | { readonly sweep: false; readonly reason: string };

/** 15 minutes: an object store's clock may differ from ours; chunks that recent are never swept. */
export const CLOCK_MARGIN_MS = 15 * 60 * 1000;

export function chunksToSweep(input: SweepInput): SweepDecision {
  const unreadable = input.retained.filter((b) => b.refs === 'unreadable').map((b) => b.id);
  if (unreadable.length > 0) {
    return { sweep: false, reason: `the file list of retained backup ${unreadable.join(', ')} cannot be read: no chunk is removed` };
  }
  const referenced = new Set<string>();
  for (const b of input.retained) if (Array.isArray(b.refs)) for (const h of b.refs) referenced.add(h);
  let cutoff = input.listingStartedAt.getTime();
  for (const b of input.retained) if (b.refs === 'in-progress') cutoff = Math.min(cutoff, Date.parse(b.beginTime));
  cutoff -= input.clockMarginMs;
  const remove: string[] = [];
  let keptReferenced = 0;
  let keptRecent = 0;
  for (const c of input.listed) {
    if (referenced.has(c.hash)) keptReferenced++;
    else if (!(c.mtime.getTime() < cutoff)) keptRecent++;
    else remove.push(c.hash);
  }
  remove.sort();
  const n = input.retained.length;
  return {
    sweep: true,
    remove,
    keptReferenced,
    keptRecent,
    reason: `no retained backup refers to them (${n} retained backup${n === 1 ? '' : 's'}, ${referenced.size} referenced chunk${referenced.size === 1 ? '' : 's'})`,
  };
}

/** A backup leaving the catalog (retention or failed-backup cleanup) and its method. */
export interface LeavingBackup {
  readonly id: string;
  readonly method: string;
}

/**
 * Whether to sweep chunks after this plan's deletions, and why: when the catalog stores the `ssh`
 * method's chunks content-addressed and an `ssh` backup leaves it. undefined: no sweep.
 */
export function planChunkSweep(chunkStore: boolean, leaving: readonly LeavingBackup[]): { subject: string; reason: string } | undefined {
  if (!chunkStore) return undefined;
  const ids = leaving.filter((b) => b.method === 'ssh').map((b) => b.id);
  if (ids.length === 0) return undefined;
  return {
    subject: 'chunks',
    reason: `backup ${ids.join(', ')} leaves the catalog: remove the chunks no retained backup (DONE, in progress or in use by a restore or drill) refers to`,
  };
}
