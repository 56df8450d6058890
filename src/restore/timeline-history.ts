/**
 * Timeline history files (TTTTTTTT.history) and the path of timelines a recovery follows.
 * PostgreSQL writes one line per ancestor: "parentTLI<TAB>switchpoint LSN<TAB>reason"; the file of
 * timeline T lists the whole ancestry of T, oldest first. Pure: no I/O.
 */

import { PgbkError } from '../errors.js';
import { formatLsn, lsnToSegmentNumber, parseLsn } from '../pg/lsn.js';

export interface HistoryEntry {
  /** A timeline that ended (was forked from) at `switchLsn`. */
  readonly timeline: number;
  readonly switchLsn: bigint;
}

/** Parse the content of `<timeline>.history`; comments (#) and blank lines are skipped. */
export function parseHistory(content: string, timeline: number, fileName = `timeline ${timeline} history`): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const raw of content.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s|$)/.exec(line);
    if (m === null) throw new PgbkError('WAL', `${fileName}: cannot parse line "${line}"`);
    const tli = Number(m[1]);
    const prev = entries[entries.length - 1];
    if (tli >= timeline || (prev !== undefined && tli <= prev.timeline)) {
      throw new PgbkError('WAL', `${fileName}: timeline ${tli} out of order (PostgreSQL writes ancestors ascending)`);
    }
    entries.push({ timeline: tli, switchLsn: parseLsn(m[2] ?? '') });
  }
  return entries;
}

/** One timeline on the way from a backup to the target timeline: its LSN range [begin, end). */
export interface TimelineStep {
  readonly timeline: number;
  /** Where recovery enters this timeline; 0n for the backup's own timeline. */
  readonly begin: bigint;
  /** Where it leaves it (the switchpoint to the next step); undefined for the last step. */
  readonly end?: bigint;
}

/**
 * The steps from `backupTimeline` to `targetTimeline`, given target's history entries. Throws when
 * the target is not a descendant of the backup's timeline, or forked off it before the backup
 * ended (PostgreSQL would refuse it: "requested timeline is not a child of this server's history").
 */
export function timelinePath(
  backupTimeline: number,
  backupEndLsn: bigint,
  targetTimeline: number,
  targetHistory: readonly HistoryEntry[] | undefined,
): TimelineStep[] {
  if (targetTimeline === backupTimeline) return [{ timeline: targetTimeline, begin: 0n }];
  if (targetTimeline < backupTimeline) {
    throw new PgbkError('USAGE', `timeline ${targetTimeline} is older than the backup's timeline ${backupTimeline}`);
  }
  if (targetHistory === undefined) {
    throw new PgbkError('NOT_FOUND', `timeline ${targetTimeline} has no history file in the archive`);
  }
  const start = targetHistory.findIndex((e) => e.timeline === backupTimeline);
  if (start < 0) {
    throw new PgbkError('USAGE', `timeline ${targetTimeline} does not descend from timeline ${backupTimeline} (the backup's)`);
  }
  const fork = targetHistory[start]!;
  if (fork.switchLsn < backupEndLsn) {
    throw new PgbkError(
      'USAGE',
      `timeline ${targetTimeline} forked off timeline ${backupTimeline} at ${formatLsn(fork.switchLsn)}, before the backup ended at ${formatLsn(backupEndLsn)}`,
    );
  }
  const steps: TimelineStep[] = [];
  let begin = 0n;
  for (let i = start; i < targetHistory.length; i++) {
    const e = targetHistory[i]!;
    steps.push({ timeline: e.timeline, begin, end: e.switchLsn });
    begin = e.switchLsn;
  }
  steps.push({ timeline: targetTimeline, begin });
  return steps;
}

/**
 * The timeline segment number `segno` is read from along the path. PostgreSQL (XLogFileReadAnyTLI)
 * reads each segment from the newest timeline of the path that begins at or before it; the segment
 * holding a switchpoint therefore comes from the new timeline, which carries a copy of the old WAL
 * up to the switch.
 */
export function timelineForSegment(steps: readonly TimelineStep[], segno: number, segSize: number): number {
  let tli = steps[0]?.timeline;
  for (const s of steps) {
    if (lsnToSegmentNumber(s.begin, segSize) <= segno) tli = s.timeline;
  }
  if (tli === undefined) throw new PgbkError('INTERNAL', 'empty timeline path');
  return tli;
}
