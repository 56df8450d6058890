/**
 * Which backup a restore starts from, and whether the archive holds the WAL to get from it to the
 * target. Pure (no clock, no fs): everything is passed in, so the rules are table-tested.
 *
 * Barman's rule: for a time or LSN target, the newest DONE backup that ended at or before the
 * target; for a transaction id, a restore point name, "immediate" or no target, the newest DONE
 * backup (an xid or a name cannot be placed without reading WAL). An explicit backup id overrides.
 * Every refusal happens here, before anything is written — but one: whether a time target before a
 * hole in the archive is reached, which the WAL scan decides (also before anything is written).
 */

import { PgbkError } from '../errors.js';
import { plural } from '../lib/plural.js';
import { formatLsn, lsnToSegmentNumber, parseLsn, segmentStartLsn } from '../pg/lsn.js';
import { parseSegmentName, segmentNameFrom, segmentNumber } from '../pg/wal-name.js';
import type { BackupRecord, DoneBackup } from '../model/types.js';
import { describeTarget, formatMicros, isoToMicros, type RecoveryTarget, type TargetTimeline } from './target.js';
import { timelineForSegment, timelinePath, type HistoryEntry, type TimelineStep } from './timeline-history.js';

export interface ChooseInput {
  readonly server: string;
  readonly backups: readonly BackupRecord[];
  /** A backup id, "latest", or undefined (= choose by the target). */
  readonly requested: string | undefined;
  readonly target: RecoveryTarget;
  readonly timeline: TargetTimeline;
  /** Archived full segment names (any order). */
  readonly segments: readonly string[];
  /** Parsed .history files in the archive, by timeline. */
  readonly histories: ReadonlyMap<number, readonly HistoryEntry[]>;
  readonly segSize: number;
  readonly nowMicros: bigint;
}

export interface Choice {
  readonly backup: DoneBackup;
  /** Why this backup, in words for the summary. */
  readonly reason: string;
  readonly targetTimeline: number;
  readonly path: readonly TimelineStep[];
  /** First and last archived segment recovery will read (the last known one for open-ended targets). */
  readonly walFrom: string;
  readonly walTo: string;
  readonly segmentCount: number;
  readonly warnings: readonly string[];
  /** The server's WAL segment size (server.json), that the choice was made with. */
  readonly segSize: number;
  /**
   * A time target after a hole in the archive with newer WAL behind it (a PITR window or a pruned
   * range leaves such holes on purpose). Whether recovery stops before the hole only the WAL can
   * say: PostgreSQL stops before the first commit or abort timed after the target, and that record
   * may lie before the hole. The scan of the WAL to replay (wal-scan.ts), which reads those
   * records before anything is written, decides; `refusal` is thrown when it does not find one.
   */
  readonly beforeGap?: { readonly missing: string; readonly refusal: PgbkError };
}

interface Ends {
  readonly endLsn: bigint;
  readonly endMicros: bigint;
  readonly timeline: number;
}

function endsOf(b: DoneBackup): Ends {
  return { endLsn: parseLsn(b.endLsn), endMicros: isoToMicros(b.endTime), timeline: b.timeline };
}

/** Does the backup end at or before the target? undefined = the target cannot be placed (xid, name…). */
function endsBefore(b: DoneBackup, ends: Ends, target: RecoveryTarget): boolean | undefined {
  switch (target.kind) {
    case 'time':
      return ends.endMicros <= target.micros;
    case 'lsn':
      return ends.endLsn <= target.lsn;
    case 'xid':
    case 'name':
    case 'immediate':
    case 'latest':
      return undefined;
    default: {
      const never: never = target;
      throw new PgbkError('INTERNAL', `unknown target ${String(never)} for ${b.id}`);
    }
  }
}

function resolveTimeline(t: TargetTimeline, backupTli: number, histories: ChooseInput['histories']): number {
  switch (t.kind) {
    case 'current':
      return backupTli;
    case 'number':
      return t.timeline;
    case 'latest': {
      // PostgreSQL's findNewestTimeLine: probe backupTli+1, +2, … until a history file is missing.
      let tli = backupTli;
      while (histories.has(tli + 1)) tli++;
      return tli;
    }
    default: {
      const never: never = t;
      throw new PgbkError('INTERNAL', `unknown timeline ${String(never)}`);
    }
  }
}

function afterTargetMessage(b: DoneBackup, ends: Ends, target: RecoveryTarget): string {
  return target.kind === 'time'
    ? `backup ${b.id} ended at ${formatMicros(ends.endMicros)}, after the target ${target.text}`
    : `backup ${b.id} ended at LSN ${b.endLsn}, after the target ${describeTarget(target)}`;
}

export function chooseBackup(input: ChooseInput): Choice {
  const { server, target } = input;
  if (target.kind === 'time' && target.micros > input.nowMicros) {
    throw new PgbkError('USAGE', `target time ${target.text} is in the future (now ${formatMicros(input.nowMicros)})`, { server });
  }
  const done = input.backups.filter((b) => b.status === 'DONE').sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const explicit = input.requested !== undefined && input.requested !== 'latest';
  let candidates: DoneBackup[];
  if (explicit) {
    const b = input.backups.find((x) => x.id === input.requested);
    if (b === undefined) throw new PgbkError('NOT_FOUND', `backup ${input.requested} does not exist`, { server });
    if (b.status !== 'DONE') {
      throw new PgbkError('USAGE', `backup ${b.id} is ${b.status}, not DONE: it cannot be restored`, { server });
    }
    candidates = [b];
  } else {
    if (done.length === 0) throw new PgbkError('NOT_FOUND', 'no DONE backup to restore from', { server });
    candidates = [...done].reverse();
  }

  const skipped: string[] = [];
  for (const b of candidates) {
    const ends = endsOf(b);
    const fits = endsBefore(b, ends, target);
    if (fits === false) {
      if (explicit) throw new PgbkError('USAGE', `${afterTargetMessage(b, ends, target)}: it cannot reach the target`, { server });
      continue;
    }
    const tli = resolveTimeline(input.timeline, ends.timeline, input.histories);
    let path: TimelineStep[];
    try {
      path = timelinePath(ends.timeline, ends.endLsn, tli, input.histories.get(tli));
    } catch (err) {
      // A newer backup off the target timeline's path (e.g. an old primary's, taken after the
      // failover forked the timeline followed): an older one may lead there. Said in a warning.
      if (explicit) throw withServer(err, server);
      skipped.push(`${b.id}: ${(err as Error).message}`);
      continue;
    }
    const reason = explicit
      ? `requested by id`
      : fits === true
        ? target.kind === 'time'
          ? `newest DONE backup that ended before the target (ended ${formatMicros(ends.endMicros)})`
          : `newest DONE backup whose end LSN ${b.endLsn} is at or before the target`
        : target.kind === 'latest'
          ? 'newest DONE backup; recovery replays all archived WAL'
          : target.kind === 'immediate'
            ? `newest DONE backup; recovery stops where it is consistent (LSN ${b.endLsn})`
            : `newest DONE backup (a ${target.kind === 'xid' ? 'transaction id' : 'restore point'} cannot be placed without replaying WAL; name an older backup id if the target precedes it)`;
    const next = done.find((x) => x.id > b.id);
    const wal = checkWal(input, b, tli, path, next);
    const foreign = foreignTimelineWarning(input, ends.timeline, tli, done);
    const passedOver =
      skipped.length === 0
        ? []
        : [
            `${plural(skipped.length, 'newer backup')} cannot reach timeline ${tli} and ${skipped.length === 1 ? 'was' : 'were'} passed over: ${skipped.join('; ')}`,
          ];
    return {
      ...wal,
      warnings: [...passedOver, ...wal.warnings, ...(foreign === undefined ? [] : [foreign])],
      backup: b,
      reason,
      targetTimeline: tli,
      segSize: input.segSize,
    };
  }
  if (skipped.length > 0) {
    throw new PgbkError('USAGE', `no DONE backup leads to timeline ${describeTimelineInput(input.timeline)}:\n  ${skipped.join('\n  ')}`, { server });
  }
  const oldest = done[0]!;
  const oldestEnds = endsOf(oldest);
  throw new PgbkError(
    'USAGE',
    `target ${describeTarget(target)} is before the end of the oldest backup ${oldest.id} (${target.kind === 'time' ? `ended ${formatMicros(oldestEnds.endMicros)}` : `end LSN ${oldest.endLsn}`})`,
    { server, hint: 'a backup can only be recovered forward: choose a target after its end' },
  );
}

/**
 * Following the newest timeline (the default) onto one no backup of the server was ever taken on.
 * A failover makes such a timeline until the next backup; so does a copy restored from this
 * catalog that was promoted while still archiving as this server — and then this restore would
 * replay the copy's WAL instead of the server's, silently (check's "timeline" entry tells which).
 */
function foreignTimelineWarning(input: ChooseInput, backupTimeline: number, tli: number, done: readonly DoneBackup[]): string | undefined {
  if (input.timeline.kind !== 'latest' || tli <= backupTimeline || done.some((x) => x.timeline >= tli)) return undefined;
  return `recovery follows timeline ${tli}, the newest in the archive, but no backup of server ${input.server} was taken on it: unless the server itself switched to it (a failover or promotion), it is the timeline of a copy restored from this catalog that archived into it, and this restore would replay that copy's WAL instead of the server's; --target-timeline ${backupTimeline} follows the server's own (pgbk check ${input.server} tells which: "timeline")`;
}

function describeTimelineInput(t: TargetTimeline): string {
  return t.kind === 'number' ? String(t.timeline) : t.kind;
}

function withServer(err: unknown, server: string): unknown {
  if (err instanceof PgbkError && err.server === undefined) {
    return new PgbkError(err.code, err.message, { server, hint: err.hint, cause: err });
  }
  return err;
}

type WalPart = Omit<Choice, 'backup' | 'reason' | 'targetTimeline' | 'segSize'>;

/**
 * WAL continuity from the backup's first segment along the timeline path: the backup's own WAL
 * must be complete; an LSN target must be inside archived WAL; "latest" must not stop at a hole
 * with newer WAL behind it (PostgreSQL would end recovery there and promote at the wrong point).
 * A time target after the backup's end with a hole before newer WAL is reachable only when a
 * commit after the target lies before the hole: the choice carries the refusal (`beforeGap`) for
 * the WAL scan to throw when it finds none (issue 14; session 17's DR walk-through F6: refusing
 * outright turned reachable targets away). The refusal names the nearest points that can be
 * reached: the WAL before the hole, and the end of the next backup after it. For xid/name targets,
 * which cannot be placed without reading WAL, the hole is a warning: PostgreSQL itself stops with
 * "recovery ended before configured recovery target was reached" if the target lies beyond.
 */
function checkWal(input: ChooseInput, b: DoneBackup, tli: number, path: readonly TimelineStep[], next: DoneBackup | undefined): WalPart {
  const { segSize, server, target } = input;
  const present = new Set(input.segments);
  const beginSeg = segmentNumber(b.beginWal, segSize);
  const endSeg = segmentNumber(b.endWal, segSize);
  const nameAt = (s: number): string => segmentNameFrom(timelineForSegment(path, s, segSize), s, segSize);

  let newestOnPath = -1;
  for (const name of input.segments) {
    const p = parseSegmentName(name);
    if (p === undefined) continue;
    const s = segmentNumber(name, segSize);
    if (s >= beginSeg && p.timeline === timelineForSegment(path, s, segSize) && s > newestOnPath) newestOnPath = s;
  }
  let firstMissing = beginSeg;
  while (present.has(nameAt(firstMissing))) firstMissing++;

  const range = (to: number): string => `${nameAt(beginSeg)}…${nameAt(to)}`;
  if (firstMissing <= endSeg) {
    throw new PgbkError('WAL', `WAL segment ${nameAt(firstMissing)} is missing from the archive: backup ${b.id} needs ${range(endSeg)} to become consistent`, {
      server,
      hint: 'this backup cannot be restored; choose another backup id',
    });
  }
  const warnings: string[] = [];
  let lastSeg = firstMissing - 1;
  if (target.kind === 'lsn') {
    const targetSeg = lsnToSegmentNumber(target.lsn, segSize);
    if (firstMissing <= targetSeg) {
      if (newestOnPath < firstMissing) {
        throw new PgbkError(
          'USAGE',
          `target LSN ${formatLsn(target.lsn)} is after the last archived WAL (newest segment on timeline ${tli}'s path: ${newestOnPath >= 0 ? nameAt(newestOnPath) : 'none'})`,
          { server, hint: 'wait until the segment holding the target is archived (pg_switch_wal() forces it)' },
        );
      }
      throw gapError(server, nameAt(firstMissing), range(targetSeg), segSize, firstMissing, next);
    }
    lastSeg = targetSeg;
  } else if (target.kind === 'immediate') {
    lastSeg = endSeg;
  } else if (newestOnPath > firstMissing) {
    if (target.kind === 'latest') throw gapError(server, nameAt(firstMissing), range(newestOnPath), segSize, firstMissing, next);
    if (target.kind === 'time') {
      const missing = nameAt(firstMissing);
      const refusal = timeGapError(server, target.text, b, missing, segmentStartLsn(firstMissing, segSize), next);
      return { path, walFrom: nameAt(beginSeg), walTo: nameAt(lastSeg), segmentCount: lastSeg - beginSeg + 1, warnings, beforeGap: { missing, refusal } };
    }
    warnings.push(
      `WAL segment ${nameAt(firstMissing)} is missing but newer WAL exists: recovery cannot go past ${formatLsn(segmentStartLsn(firstMissing, segSize))}; if the target lies beyond, PostgreSQL stops with "recovery ended before configured recovery target was reached"`,
    );
  }
  return {
    path,
    walFrom: nameAt(beginSeg),
    walTo: nameAt(lastSeg),
    segmentCount: lastSeg - beginSeg + 1,
    warnings,
  };
}

function timeGapError(server: string, targetText: string, b: DoneBackup, missing: string, gapLsn: bigint, next: DoneBackup | undefined): PgbkError {
  const before = `up to LSN ${formatLsn(gapLsn)} from backup ${b.id} (it ended ${b.endTime}, LSN ${b.endLsn}; --target-lsn before ${formatLsn(gapLsn)}, or ${b.id} --target-immediate)`;
  const after = next === undefined ? '' : `; from the end of backup ${next.id} (${next.endTime}, LSN ${next.endLsn}) on: any later target`;
  return new PgbkError(
    'WAL',
    `target time ${targetText} lies in a gap of the WAL archive: segment ${missing} is missing (pruned outside the PITR window, or lost), and no commit after the target lies before it for recovery to stop at`,
    {
      server,
      hint: `nearest reachable points: ${before}${after}`,
    },
  );
}

/**
 * The hint names what works (session 17's DR walk-through): a point before the gap, the segment
 * back, and past the gap a newer backup that starts after it — or, when there is none, a new one.
 */
function gapError(server: string, missing: string, range: string, segSize: number, segno: number, next: DoneBackup | undefined): PgbkError {
  const nextAfterGap = next !== undefined && segmentNumber(next.beginWal, segSize) > segno ? next : undefined;
  const past =
    nextAfterGap === undefined
      ? `; WAL after the gap is usable only from a backup taken after it: take one now (pgbk backup ${server})`
      : `; backup ${nextAfterGap.id} starts after the gap and restores to later points (pgbk restore ${server} ${nextAfterGap.id}, or no backup id: the newest that reaches the target is chosen)`;
  return new PgbkError('WAL', `WAL segment ${missing} is missing from the archive; recovery to the target needs ${range}`, {
    server,
    hint: `restore to a point before the gap (a --target-lsn before ${formatLsn(segmentStartLsn(segno, segSize))}), or put the segment back into the archive${past}`,
  });
}
