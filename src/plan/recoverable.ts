/**
 * What `status` and `list` answer first: how far back and how far forward a restore can go, and how
 * much WAL each backup brings. Pure: backups and the archive listing in, plain data out.
 */

import { type ArchivedWal, type BackupRecord, copyFieldsOf, isCopied } from '../model/types.js';
import { lastOf, overviewOf, runCounter, runName, type WalOverview, type WalRun } from '../model/wal-runs.js';
import { DEFAULT_SEGMENT_SIZE, parseSegmentName, segmentNameFrom, segmentNumber } from '../pg/wal-name.js';
import { walHolders } from './wal.js';

export interface RecoverableWindow {
  /** The earliest point a restore can reach: the end (consistency point) of the oldest DONE backup. */
  readonly from: { readonly backupId: string; readonly time: string | null; readonly lsn: string | null };
  /**
   * The latest: the newest archived WAL segment (a restore replays through it), with its archive
   * time. The last commit time inside it is not known without reading the WAL.
   */
  readonly to: { readonly wal: string | null; readonly archivedAt: string | null };
  /**
   * A segment missing from the WAL after older backups: a restore from them cannot replay past it,
   * so the window above starts at the oldest backup after the hole. null: no hole.
   */
  readonly hole: { readonly missing: string; readonly backups: readonly string[] } | null;
}

/** retention.pitrWindow and the time it is measured back from (see plan/wal.ts walHolders). */
export interface PitrWindowInput {
  readonly pitrWindowSeconds?: number;
  readonly now?: Date;
}

function byId(a: BackupRecord, b: BackupRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Archived segments per timeline as sorted, disjoint, non-adjacent [from, to] XLogSegNo intervals. */
type TimelineIntervals = Map<number, [number, number][]>;

function intervalsOf(runs: readonly WalRun[], segSize: number): TimelineIntervals {
  const out: TimelineIntervals = new Map();
  for (const r of runs) {
    const p = parseSegmentName(runName(r.prefix, r.seg));
    if (p === undefined) continue;
    let from: number;
    try {
      from = segmentNumber(runName(r.prefix, r.seg), segSize);
    } catch {
      continue; // a name impossible at this segment size: not part of this server's WAL
    }
    const list = out.get(p.timeline) ?? [];
    const last = list[list.length - 1];
    // Runs are split per 16-hex prefix; a run continuing into the next log joins the one before.
    if (last !== undefined && from <= last[1] + 1) last[1] = Math.max(last[1], from + r.count - 1);
    else list.push([from, from + r.count - 1]);
    out.set(p.timeline, list);
  }
  return out;
}

/**
 * How far recovery replays from segment `segno` on `timeline` without a missing segment, following
 * newer timelines as a restore to the latest timeline does. The timelines' history files are not
 * read here (status stays a listing): a newer timeline is taken to branch off where its first
 * archived segment lies within, or right after, the WAL reached so far. undefined: `segno` itself
 * is not archived.
 */
function replayEnd(wal: TimelineIntervals, timeline: number, segno: number): { timeline: number; segno: number } | undefined {
  const here = wal.get(timeline)?.find(([a, b]) => a <= segno && segno <= b);
  if (here === undefined) return undefined;
  let tli = timeline;
  let entered = segno;
  let end = here[1];
  for (;;) {
    let next: { tli: number; from: number; to: number } | undefined;
    for (const [t, list] of wal) {
      if (t <= tli || (next !== undefined && t < next.tli)) continue;
      const branch = list.find(([a]) => a >= entered && a <= end + 1);
      if (branch !== undefined) next = { tli: t, from: branch[0], to: branch[1] };
    }
    if (next === undefined) return { timeline: tli, segno: end };
    tli = next.tli;
    entered = next.from;
    end = next.to;
  }
}

/**
 * The continuous window: from the end of the oldest DONE backup that holds all WAL after it (not a
 * standalone pin, not a backup older than the PITR window's base) to the last segment a restore
 * replays without a hole. A hole after older backups moves the window's start to the oldest backup
 * after it, and is reported. undefined when there is no such backup: nothing can be restored to a
 * point in time yet. `segSize`: the server's WAL segment size (16 MiB when not known yet).
 */
export function recoverableWindow(
  backups: readonly BackupRecord[],
  archive: ArchivedWal | WalOverview,
  pitr: PitrWindowInput = {},
  segSize: number = DEFAULT_SEGMENT_SIZE,
): RecoverableWindow | undefined {
  const consistentOnly = walHolders(backups, pitr.pitrWindowSeconds, pitr.now).consistentOnly;
  const eligible = backups
    .filter((b) => b.status === 'DONE')
    .filter((b) => !consistentOnly.has(b.id))
    .sort(byId);
  if (eligible.length === 0) return undefined;
  const wal = overviewOf(archive);
  const intervals = intervalsOf(wal.runs, segSize);
  const position = (name: string): { timeline: number; segno: number } | undefined => {
    const p = parseSegmentName(name.slice(0, 24));
    if (p === undefined) return undefined;
    try {
      return { timeline: p.timeline, segno: segmentNumber(name, segSize) };
    } catch {
      return undefined;
    }
  };
  // Each backup's reach: how far a restore from it replays (at least its own end, which it holds).
  const reach = eligible.map((b) => {
    const begin = position(b.beginWal);
    const end = position(b.endWal);
    const r = begin === undefined ? undefined : replayEnd(intervals, begin.timeline, begin.segno);
    return r !== undefined && end !== undefined && r.segno >= end.segno ? r : end;
  });
  const newest = reach[reach.length - 1];
  // The window starts at the oldest backup that replays as far as the newest one does.
  let first = 0;
  const same = (a: typeof newest, b: typeof newest): boolean => a !== undefined && b !== undefined && a.timeline === b.timeline && a.segno === b.segno;
  while (first < eligible.length - 1 && !same(reach[first], newest)) first++;
  const oldest = eligible[first]!;
  const cutOff = eligible.slice(0, first);
  const cutReach = reach[first - 1];
  const hole =
    cutOff.length === 0 || cutReach === undefined || newest === undefined || cutReach.segno >= newest.segno
      ? null
      : { missing: segmentNameFrom(cutReach.timeline, cutReach.segno + 1, segSize), backups: cutOff.map((b) => b.id) };
  const last = lastOf(wal.runs);
  const toName = newest === undefined ? oldest.endWal : segmentNameFrom(newest.timeline, newest.segno, segSize);
  // The archive time is known for the newest archived segment (its mtime) and the backup's own end.
  const archivedAt = toName === last ? (wal.newestMtime ?? null) : toName === oldest.endWal ? oldest.endTime : null;
  return { from: { backupId: oldest.id, time: oldest.endTime, lsn: oldest.endLsn }, to: { wal: toName, archivedAt }, hole };
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
