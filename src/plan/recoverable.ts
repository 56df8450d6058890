/**
 * What `status` and `list` answer first: how far back and how far forward a restore can go, and how
 * much WAL each backup brings. Pure: backups and the archive listing in, plain data out.
 */

import { type ArchivedWal, type BackupRecord, copyFieldsOf, isCopied } from '../model/types.js';
import { lastOf, overviewOf, runCounter, type WalOverview } from '../model/wal-runs.js';
import { walHolders } from './wal.js';

export interface RecoverableWindow {
  /** The earliest point a restore can reach: the end (consistency point) of the oldest DONE backup. */
  readonly from: { readonly backupId: string; readonly time: string | null; readonly lsn: string | null };
  /**
   * The latest: the newest archived WAL segment (a restore replays through it), with its archive
   * time. The last commit time inside it is not known without reading the WAL.
   */
  readonly to: { readonly wal: string | null; readonly archivedAt: string | null };
}

/** retention.pitrWindow and the time it is measured back from (see plan/wal.ts walHolders). */
export interface PitrWindowInput {
  readonly pitrWindowSeconds?: number;
  readonly now?: Date;
}

function byId(a: BackupRecord, b: BackupRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The continuous window: from the end of the oldest DONE backup that holds all WAL after it (not a
 * standalone pin, not a backup older than the PITR window's base) to the newest archived segment.
 * undefined when there is no such backup: nothing can be restored to a point in time yet.
 */
export function recoverableWindow(
  backups: readonly BackupRecord[],
  archive: ArchivedWal | WalOverview,
  pitr: PitrWindowInput = {},
): RecoverableWindow | undefined {
  const consistentOnly = walHolders(backups, pitr.pitrWindowSeconds, pitr.now).consistentOnly;
  const oldest = backups
    .filter((b) => b.status === 'DONE')
    .filter((b) => !consistentOnly.has(b.id))
    .sort(byId)[0];
  if (oldest === undefined) return undefined;
  const wal = overviewOf(archive);
  const newest = lastOf(wal.runs);
  // With no archived segment after the backup's own, the backup's end is also the latest point.
  const reaches = newest !== undefined && newest >= oldest.endWal;
  return {
    from: { backupId: oldest.id, time: oldest.endTime, lsn: oldest.endLsn },
    to: reaches ? { wal: newest, archivedAt: wal.newestMtime ?? null } : { wal: oldest.endWal, archivedAt: oldest.endTime },
  };
}

/** A backup that can be restored only to its own end (consistent), not to later points. */
export interface RestorePoint {
  readonly backupId: string;
  readonly time: string | null;
  readonly lsn: string | null;
  /** 'standalone': pinned with keep --target standalone; 'pitr-window': older than the PITR window's base. */
  readonly why: 'standalone' | 'pitr-window';
}

/** The older restore points outside the continuous window, oldest first (issue 14). */
export function restorePoints(backups: readonly BackupRecord[], pitr: PitrWindowInput = {}): RestorePoint[] {
  const consistentOnly = walHolders(backups, pitr.pitrWindowSeconds, pitr.now).consistentOnly;
  return backups
    .filter((b) => b.status === 'DONE')
    .filter((b) => consistentOnly.has(b.id))
    .sort(byId)
    .map((b) => ({ backupId: b.id, time: b.endTime, lsn: b.endLsn, why: b.keep === 'standalone' ? 'standalone' : 'pitr-window' }));
}

export interface BackupWal {
  /** Archived segments from this backup's beginWal up to (not including) the next backup's beginWal. */
  readonly segments: number;
  /** segments × WAL segment size: uncompressed bytes. */
  readonly bytes: number;
}

/**
 * WAL per backup, for `list`: the archived segments from its beginWal up to the next backup's
 * beginWal (the newest archived segment for the newest backup). That is the WAL a point-in-time
 * restore from this backup replays before the next backup would be the better start, and roughly
 * what deleting this backup lets pruning free. Segment names compare as text, which orders them
 * within a timeline. Backups not copied yet (STARTED) or FAILED get nothing.
 */
export function walPerBackup(backups: readonly BackupRecord[], archive: readonly string[] | WalOverview, segSize: number): Map<string, BackupWal> {
  const withWal = backups.filter(isCopied).sort((a, b) => (a.beginWal < b.beginWal ? -1 : a.beginWal > b.beginWal ? 1 : 0));
  const count = 'runs' in archive ? runCounter(archive.runs) : (from: string, until: string | undefined) => countInRange(archive, from, until);
  const out = new Map<string, BackupWal>();
  for (let i = 0; i < withWal.length; i++) {
    const b = withWal[i]!;
    const n = count(b.beginWal, withWal[i + 1]?.beginWal);
    out.set(b.id, { segments: n, bytes: n * segSize });
  }
  return out;
}

/** Segments s with from ≤ s < until (until undefined: no upper bound); `sorted` ascending. */
function countInRange(sorted: readonly string[], from: string, until: string | undefined): number {
  const lo = lowerBound(sorted, from);
  const hi = until === undefined ? sorted.length : lowerBound(sorted, until);
  return Math.max(0, hi - lo);
}

function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Seconds from begin to end, or undefined when it has not ended (or failed unseen) or a time is unreadable. */
export function backupDurationSeconds(b: BackupRecord): number | undefined {
  const { endTime } = copyFieldsOf(b);
  if (endTime === undefined) return undefined;
  const d = (Date.parse(endTime) - Date.parse(b.beginTime)) / 1000;
  return Number.isFinite(d) && d >= 0 ? d : undefined;
}

/** server_version_num → "15.18" (10 and later), "9.6.24" before; 0 (unknown) → "unknown". */
export function formatPgVersion(num: number): string {
  if (!Number.isInteger(num) || num <= 0) return 'unknown';
  if (num >= 100000) return `${Math.floor(num / 10000)}.${num % 10000}`;
  return `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}.${num % 100}`;
}

export { plural } from '../lib/plural.js';
