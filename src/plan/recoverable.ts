/**
 * What `status` and `list` answer first: how far back and how far forward a restore can go, and how
 * much WAL each backup brings. Pure: backups and the archive listing in, plain data out.
 */

import { type ArchivedWal, type BackupRecord, copyFieldsOf, type DoneBackup, isCopied } from '../model/types.js';
import { lastOf, overviewOf, runCounter, runName, type WalOverview, type WalRun } from '../model/wal-runs.js';
import { DEFAULT_SEGMENT_SIZE, segmentNameFrom } from '../pg/wal-name.js';
import { walHolders } from './wal.js';
import { positionOf } from './wal-index.js';

export interface RecoverableWindow {
  /** The earliest point a restore can reach: the end (consistency point) of the oldest DONE backup. */
  readonly from: { readonly backupId: string; readonly time: string | null; readonly lsn: string | null };
  /**
   * The latest: the newest archived WAL segment (a restore replays through it), with its archive
   * time. The last commit time inside it is not known without reading the WAL.
   */
  readonly to: { readonly wal: string | null; readonly archivedAt: string | null };
  /**
   * A segment missing from the archive that older backups need: a restore from them cannot replay
   * past it (when it lies within a backup's own WAL, that backup cannot be restored at all), so the
   * window starts at the oldest backup after it. With no backup restorable, `to.wal` is null. null:
   * no hole.
   */
  readonly hole: {
    readonly missing: string;
    readonly backups: readonly string[];
    /**
     * What each of `backups` still reaches: the last segment a restore from it replays (a target up
     * to that WAL works), or null when its own WAL is incomplete (it cannot be restored). Oldest first.
     */
    readonly reaches: readonly { readonly backupId: string; readonly wal: string | null }[];
  } | null;
  /**
   * DONE backups newer than the newest restorable one that miss a segment of their own WAL (it was
   * removed after they were taken): a restore refuses them. Oldest first; empty: none.
   */
  readonly unrestorable: readonly { readonly backupId: string; readonly missing: string }[];
  /**
   * Archived WAL after the window's end that no restore reaches: the first segment missing after
   * `to.wal`, and how many archived segments lie beyond it (on that timeline or newer ones). null:
   * the window ends at the newest WAL. Only a new base backup makes that WAL usable.
   */
  readonly beyond: { readonly missing: string; readonly segments: number } | null;
}

/** retention.pitrWindow and the time it is measured back from (see plan/wal.ts walHolders). */
export interface PitrWindowInput {
  readonly pitrWindowSeconds?: number;
  readonly now?: Date;
}

function byId(a: BackupRecord, b: BackupRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A segment's place: its timeline and XLogSegNo. */
interface Position {
  readonly timeline: number;
  readonly segno: number;
}

/** Archived segments per timeline as sorted, disjoint, non-adjacent [from, to] XLogSegNo intervals. */
type TimelineIntervals = Map<number, [number, number][]>;

/** wal-index.ts positionOf, undefined for a name impossible at this segment size (not this server's WAL). */
function positionIfValid(name: string, segSize: number): Position | undefined {
  try {
    return positionOf(name, segSize);
  } catch {
    return undefined;
  }
}

function intervalsOf(runs: readonly WalRun[], segSize: number): TimelineIntervals {
  const out: TimelineIntervals = new Map();
  for (const r of runs) {
    const p = positionIfValid(runName(r.prefix, r.seg), segSize);
    if (p === undefined) continue;
    const from = p.segno;
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
function replayEnd(wal: TimelineIntervals, timeline: number, segno: number): Position | undefined {
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

/** How far a restore from a backup replays, and the first segment it misses. */
interface Chain {
  /** undefined: the backup cannot become consistent (a segment of its own WAL is missing). */
  readonly reach: Position | undefined;
  readonly missing: string;
}

/**
 * A restore from `b` can become consistent only when its own WAL, from its first segment to its
 * end segment, is archived (restore refuses it otherwise); from there it replays as far as
 * replayEnd goes.
 */
function chainOf(b: DoneBackup, intervals: TimelineIntervals, segSize: number): Chain {
  const begin = positionIfValid(b.beginWal, segSize);
  const end = positionIfValid(b.endWal, segSize);
  if (begin === undefined || end === undefined) return { reach: undefined, missing: b.beginWal };
  const r = replayEnd(intervals, begin.timeline, begin.segno);
  const missing = r === undefined ? b.beginWal : segmentNameFrom(r.timeline, r.segno + 1, segSize);
  return { reach: r !== undefined && r.segno >= end.segno ? r : undefined, missing };
}

/**
 * DONE backups a restore refuses because a segment of their own WAL (beginWal..endWal) is not in
 * the archive, each with the first segment it misses. Retention does not count them.
 */
export function backupsMissingOwnWal(backups: readonly BackupRecord[], archive: ArchivedWal | WalOverview, segSize: number): Map<string, string> {
  const done = backups.filter((b): b is DoneBackup => b.status === 'DONE');
  const out = new Map<string, string>();
  if (done.length === 0) return out;
  const intervals = intervalsOf(overviewOf(archive).runs, segSize);
  for (const b of done) {
    const c = chainOf(b, intervals, segSize);
    if (c.reach === undefined) out.set(b.id, c.missing);
  }
  return out;
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
    .filter((b): b is DoneBackup => b.status === 'DONE')
    .filter((b) => !consistentOnly.has(b.id))
    .sort(byId);
  if (eligible.length === 0) return undefined;
  const wal = overviewOf(archive);
  const intervals = intervalsOf(wal.runs, segSize);
  const chains = eligible.map((b) => chainOf(b, intervals, segSize));
  const same = (a: Position | undefined, b: Position | undefined): boolean =>
    a !== undefined && b !== undefined && a.timeline === b.timeline && a.segno === b.segno;
  let newestAt = chains.length - 1;
  while (newestAt > 0 && chains[newestAt]!.reach === undefined) newestAt--;
  const newest = chains[newestAt]!.reach;
  // The window starts at the oldest backup that replays as far as the newest restorable one does;
  // the backups before it stop at a missing segment (or miss their own WAL: no window at all).
  let first = newest === undefined ? eligible.length - 1 : 0;
  while (first < newestAt && !same(chains[first]!.reach, newest)) first++;
  const oldest = eligible[first]!;
  const cutOff = newest === undefined ? eligible : eligible.slice(0, first);
  const reachName = (p: Position | undefined): string | null => (p === undefined ? null : segmentNameFrom(p.timeline, p.segno, segSize));
  const hole =
    cutOff.length === 0
      ? null
      : {
          missing: chains[cutOff.length - 1]!.missing,
          backups: cutOff.map((b) => b.id),
          reaches: cutOff.map((b, i) => ({ backupId: b.id, wal: reachName(chains[i]!.reach) })),
        };
  const from = { backupId: oldest.id, time: oldest.endTime, lsn: oldest.endLsn };
  if (newest === undefined) return { from, to: { wal: null, archivedAt: null }, hole, unrestorable: [], beyond: null };
  const unrestorable = eligible.slice(newestAt + 1).map((b, i) => ({ backupId: b.id, missing: chains[newestAt + 1 + i]!.missing }));
  const last = lastOf(wal.runs);
  const toName = segmentNameFrom(newest.timeline, newest.segno, segSize);
  // The archive time is known for the newest archived segment (its mtime).
  // WAL that starts after a missing segment, on the window's timeline or a newer one (a newer
  // timeline branching off within the WAL reached would have been followed; one that branched off
  // earlier is another history, not stranded WAL).
  let stranded = 0;
  for (const [t, list] of intervals) {
    if (t < newest.timeline) continue;
    for (const [a, b] of list) if (a > newest.segno + 1 || (t === newest.timeline && a > newest.segno)) stranded += b - a + 1;
  }
  const beyond = stranded === 0 ? null : { missing: segmentNameFrom(newest.timeline, newest.segno + 1, segSize), segments: stranded };
  return { from, to: { wal: toName, archivedAt: toName === last ? (wal.newestMtime ?? null) : null }, hole, unrestorable, beyond };
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
