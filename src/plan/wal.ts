/**
 * WAL continuity and pruning (DESIGN.md §5):
 * - finish-backup: a WAITING_FOR_WAL backup becomes DONE once every segment from its beginWal to its
 *   endWal is archived, counting the segments this same plan archives first (apply order:
 *   archive → backup → finish).
 * - wal-gap: segments missing where the retained DONE backups need a continuous stream (from the
 *   oldest one's beginWal to the newest archived segment, per timeline) — recovery cannot cross a gap.
 * - prune-wal: segments older than the oldest retained backup's beginWal go. Segment numbers are
 *   compared across timelines: an older timeline's segments from the boundary on are kept, since
 *   the switch to the newer timeline happens inside a segment. A standalone-pinned backup holds only
 *   its own beginWal..endWal; a full pin holds everything after it, like a normal backup.
 *   .history files are never pruned; .backup and .partial files go with the segment they name.
 * - pitrWindow (retention.pitrWindow, issue 14): WAL is kept for point-in-time recovery only that
 *   far back. The window's base is the newest DONE backup that ended at or before now − window (it
 *   is needed to recover to the window's first instant); unpinned backups older than the base keep
 *   only their own beginWal..endWal, exactly like a standalone pin, so they stay restorable to the
 *   end of their backup (consistent) but not to points between them. A full pin is the DBA's
 *   explicit "all WAL after it" and overrides the window. See walHolders().
 */

import { segmentNameFrom } from '../pg/wal-name.js';
import { type ArchivedWal, type BackupRecord, type DoneBackup, endTimeMs } from '../model/types.js';
import { formatBytes } from '../lib/byte-size.js';
import { formatDuration } from '../config/duration.js';
import {
  contains,
  countInRange,
  firstMissing,
  indexPositions,
  indexSegments,
  lowerBound,
  mergeIndexes,
  positionOf,
  positionsOf,
  type PositionList,
  type SegmentIndex,
  type SegmentPosition,
} from './wal-index.js';

export interface WalInput {
  readonly segSize: number;
  readonly archived: ArchivedWal;
  /** Segment names this plan's archive-wal will add (valid incoming segments). */
  readonly incomingSegments: readonly string[];
  /** Every observed backup (for finish-backup). */
  readonly backups: readonly BackupRecord[];
  /** The backups that survive this plan's deletions (for gaps and pruning). */
  readonly remaining: readonly BackupRecord[];
  /** retention.pitrWindow in seconds; undefined: WAL is kept for PITR from the oldest backup on. */
  readonly pitrWindowSeconds?: number;
  /** The plan's time (the window is measured back from it); required with pitrWindowSeconds. */
  readonly now?: Date;
}

/**
 * Which backups hold WAL, and how much (shared by the planner and prune-wal's re-check at apply
 * time, so both apply one rule):
 * - `consistentOnly`: ids of DONE backups that keep only their own beginWal..endWal — standalone
 *   pins, and with a PITR window the unpinned backups older than the window's base;
 * - every other DONE, STARTED or WAITING_FOR_WAL backup holds all WAL from its beginWal on;
 * - `pitrBase`: the window's base backup, when a window is set and some backup ended before it.
 */
export interface WalHolders {
  readonly consistentOnly: ReadonlySet<string>;
  readonly pitrBase: BackupRecord | undefined;
}

export function walHolders(backups: readonly BackupRecord[], pitrWindowSeconds: number | undefined, now: Date | undefined): WalHolders {
  const consistentOnly = new Set<string>();
  for (const b of backups) if (b.status === 'DONE' && b.keep === 'standalone') consistentOnly.add(b.id);
  if (pitrWindowSeconds === undefined || now === undefined) return { consistentOnly, pitrBase: undefined };
  const windowStart = now.getTime() - pitrWindowSeconds * 1000;
  const rolling = backups
    .filter((b) => b.status === 'DONE')
    .filter((b) => b.keep === 'none')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let pitrBase: DoneBackup | undefined;
  for (const b of rolling) if (endTimeMs(b) <= windowStart) pitrBase = b;
  if (pitrBase === undefined) return { consistentOnly, pitrBase: undefined };
  for (const b of rolling) if (b.id < pitrBase.id) consistentOnly.add(b.id);
  return { consistentOnly, pitrBase };
}

export interface FinishEntry {
  readonly backup: BackupRecord;
  readonly reason: string;
}

export interface PruneDecision {
  readonly subject: string;
  readonly reason: string;
  readonly segments: readonly string[];
  readonly backupFiles: readonly string[];
  readonly bytes: number;
}

export interface WalDecision {
  readonly finish: readonly FinishEntry[];
  readonly gapWarnings: readonly string[];
  readonly prune: PruneDecision | undefined;
}

interface Range {
  readonly timeline: number;
  readonly from: number;
  readonly to: number;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function planFinish(input: WalInput, archived: SegmentIndex, incoming: SegmentIndex): FinishEntry[] {
  const out: FinishEntry[] = [];
  for (const b of input.backups) {
    if (b.status !== 'WAITING_FOR_WAL') continue;
    const begin = positionOf(b.beginWal, input.segSize);
    const end = positionOf(b.endWal, input.segSize);
    // A backup normally begins and ends on one timeline; if it spans a switch, each segment number
    // may be found on either timeline.
    const timelines = begin.timeline === end.timeline ? [begin.timeline] : [begin.timeline, end.timeline];
    let complete = true;
    let fromIncoming = 0;
    for (let s = begin.segno; s <= end.segno && complete; s++) {
      if (timelines.some((t) => contains(archived.get(t), s))) continue;
      if (timelines.some((t) => contains(incoming.get(t), s))) fromIncoming++;
      else complete = false;
    }
    if (!complete) continue;
    const count = Math.max(0, end.segno - begin.segno + 1);
    const range = b.beginWal === b.endWal ? b.beginWal : `${b.beginWal}…${b.endWal}`;
    const arriving = fromIncoming > 0 ? `, ${fromIncoming} arriving from incoming/ in this plan` : '';
    out.push({ backup: b, reason: `WAL ${range} complete (${plural(count, 'segment')}${arriving})` });
  }
  return out;
}

/** Where continuity is required: from each retained DONE backup's WAL to the newest archived. */
function continuityRanges(done: readonly DoneBackup[], present: SegmentIndex, segSize: number, holders: WalHolders): Range[] {
  const ranges: Range[] = [];
  let base: SegmentPosition | undefined;
  const ends = new Map<number, number>(); // timeline → furthest endWal of a DONE backup on it
  const begins = new Map<number, number>(); // timeline → earliest beginWal of a non-standalone backup
  for (const b of done) {
    const begin = positionOf(b.beginWal, segSize);
    const end = positionOf(b.endWal, segSize);
    if (holders.consistentOnly.has(b.id)) {
      ranges.push({ timeline: begin.timeline, from: begin.segno, to: end.segno });
      continue;
    }
    if (base === undefined || begin.segno < base.segno || (begin.segno === base.segno && begin.timeline < base.timeline)) {
      base = begin;
    }
    begins.set(begin.timeline, Math.min(begins.get(begin.timeline) ?? begin.segno, begin.segno));
    ends.set(end.timeline, Math.max(ends.get(end.timeline) ?? end.segno, end.segno));
  }
  if (base === undefined) return ranges;
  const timelines = new Set([...present.keys(), ...begins.keys(), ...ends.keys()]);
  for (const t of timelines) {
    const list = present.get(t) ?? [];
    let from: number | undefined;
    if (t === base.timeline) {
      from = base.segno;
    } else if (t < base.timeline) {
      // An older timeline matters only from a retained backup taken on it (a sibling branch);
      // otherwise its segments past the base are from before the switch, not needed continuously.
      from = begins.get(t);
    } else {
      // A later timeline's fork point is unknown here (it is in its .history file); its first
      // segment at or after the base stands in for it, so only gaps inside the timeline count.
      const firstPresent = list[lowerBound(list, base.segno)];
      const begin = begins.get(t);
      from = firstPresent === undefined ? begin : begin === undefined ? firstPresent : Math.min(begin, firstPresent);
    }
    if (from === undefined) continue;
    const to = Math.max(list[list.length - 1] ?? -1, ends.get(t) ?? -1);
    if (to >= from) ranges.push({ timeline: t, from, to });
  }
  return ranges;
}

function planGaps(done: readonly DoneBackup[], present: SegmentIndex, segSize: number, holders: WalHolders): string[] {
  const byTimeline = new Map<number, Range[]>();
  for (const r of continuityRanges(done, present, segSize, holders)) {
    byTimeline.set(r.timeline, [...(byTimeline.get(r.timeline) ?? []), r]);
  }
  const warnings: string[] = [];
  for (const t of [...byTimeline.keys()].sort((a, b) => a - b)) {
    const ranges = (byTimeline.get(t) ?? []).sort((a, b) => a.from - b.from);
    const list = present.get(t) ?? [];
    let missing = 0;
    let first: number | undefined;
    let coveredTo = -1; // merge overlapping ranges so no segment is counted twice
    for (const r of ranges) {
      const from = Math.max(r.from, coveredTo + 1);
      if (r.to < from) continue;
      missing += r.to - from + 1 - countInRange(list, from, r.to);
      first ??= firstMissing(list, from, r.to);
      coveredTo = Math.max(coveredTo, r.to);
    }
    if (missing > 0 && first !== undefined) {
      warnings.push(
        `timeline ${t}: ${plural(missing, 'WAL segment')} missing from the archive, first ` +
          `${segmentNameFrom(t, first, segSize)}; recovery cannot replay past it`,
      );
    }
  }
  return warnings;
}

function planPrune(input: WalInput, archivedPositions: PositionList, walHold: WalHolders): PruneDecision | undefined {
  const holders = input.remaining.filter((b) => b.status !== 'FAILED'); // DONE or in progress
  // With no DONE backup that holds WAL onward, nothing may go: the WAL may be all there is.
  if (!holders.some((b) => b.status === 'DONE' && !walHold.consistentOnly.has(b.id))) return undefined;
  let boundary: { segno: number; name: string; id: string } | undefined;
  const islands: Range[] = [];
  for (const b of holders) {
    // A backup still starting has no WAL position yet and could need anything: wait.
    if (b.status === 'STARTED') return undefined;
    const begin = positionOf(b.beginWal, input.segSize);
    if (walHold.consistentOnly.has(b.id)) {
      islands.push({ timeline: begin.timeline, from: begin.segno, to: positionOf(b.endWal, input.segSize).segno });
      continue;
    }
    if (boundary === undefined || begin.segno < boundary.segno) boundary = { segno: begin.segno, name: b.beginWal, id: b.id };
  }
  if (boundary === undefined) return undefined;
  const limit = boundary.segno;
  const needed = (segno: number): boolean => segno >= limit || islands.some((r) => segno >= r.from && segno <= r.to);

  const segments: string[] = [];
  const names = input.archived.segments;
  const segnos = archivedPositions.segnos;
  for (let i = 0; i < names.length; i++) {
    if (!needed(segnos[i] as number)) segments.push(names[i] as string);
  }
  const backupFiles = [...input.archived.backupFiles, ...(input.archived.partials ?? [])].filter((f) => !needed(positionOf(f, input.segSize).segno)).sort();
  if (segments.length === 0 && backupFiles.length === 0) return undefined;

  const bytes = segments.length * input.segSize;
  const what =
    segments.length > 0 ? `${plural(segments.length, 'segment')} (${formatBytes(bytes)})` : plural(backupFiles.length, 'backup history or .partial file');
  const pinned = holders.filter((b) => walHold.consistentOnly.has(b.id) && b.keep === 'standalone').length;
  const aged = islands.length - pinned;
  const standalone = pinned > 0 ? `; ${plural(pinned, 'standalone backup')} keep only their own WAL range` : '';
  const base = walHold.pitrBase;
  const reason =
    base !== undefined && aged > 0
      ? `outside the PITR window (${formatDuration(input.pitrWindowSeconds ?? 0)}): it starts at ${base.id}, which begins at ${boundary.name}; ` +
        `${plural(aged, 'older backup')} keep only the WAL they need to be consistent${standalone}`
      : `not needed by any retained backup: the oldest, ${boundary.id}, begins at ${boundary.name}${standalone}`;
  return {
    subject: `${what} before ${boundary.name}`,
    reason,
    segments,
    backupFiles,
    bytes,
  };
}

export function planWal(input: WalInput): WalDecision {
  const archivedPositions = positionsOf(input.archived.segments, input.segSize);
  const archived = indexPositions(archivedPositions);
  const incoming = indexSegments(input.incomingSegments, input.segSize);
  const present = mergeIndexes(archived, incoming);
  const done = input.remaining.filter((b) => b.status === 'DONE');
  const holders = walHolders(input.remaining, input.pitrWindowSeconds, input.now);
  return {
    finish: planFinish(input, archived, incoming),
    gapWarnings: planGaps(done, present, input.segSize, holders),
    prune: planPrune(input, archivedPositions, holders),
  };
}

/**
 * The segments of beginWal..endWal not in `archived` (sorted names), checked the same way
 * finish-backup is planned. Executors use it to re-check a backup's WAL right before marking it DONE.
 */
export function missingSegments(beginWal: string, endWal: string, archived: readonly string[], segSize: number): string[] {
  const index = indexSegments(archived, segSize);
  const begin = positionOf(beginWal, segSize);
  const end = positionOf(endWal, segSize);
  const timelines = begin.timeline === end.timeline ? [begin.timeline] : [begin.timeline, end.timeline];
  const missing: string[] = [];
  for (let s = begin.segno; s <= end.segno; s++) {
    if (!timelines.some((t) => contains(index.get(t), s))) missing.push(segmentNameFrom(end.timeline, s, segSize));
  }
  return missing;
}
