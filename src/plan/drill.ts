/**
 * Is a restore drill due (issue 14)? Level-triggered like base backups (schedule.ts): the answer
 * depends only on the drill schedule, the drill records and `now`. A drill counts for the slot it
 * was run for whether it passed or failed: a failing drill is reported (plan warning, status,
 * check), not repeated on every daemon pass until the next fire time.
 *
 * target random: the plan, not the executor, picks the point, so a saved plan is executed exactly
 * and the choice is reproducible. It is an LSN (not a time): any LSN inside archived WAL is
 * reachable, whereas a time target needs a commit after it, which only reading the WAL could show.
 */

import { previousFireTime } from '../config/cron.js';
import type { DrillSettings, ServerConfig } from '../config/resolved.js';
import { formatLsn, parseLsn, segmentStartLsn } from '../pg/lsn.js';
import { segmentNumber } from '../pg/wal-name.js';
import type { DrillRecord, ObservedServer } from '../model/types.js';
import { recoverableWindow } from './recoverable.js';
import { formatAge, formatInstant } from './time-text.js';

export interface DrillDecision {
  readonly due: boolean;
  /** The slot (ISO) a drill run now satisfies. */
  readonly slot: string;
  readonly reason: string;
  /** "latest" or "lsn X/Y". */
  readonly subject: string;
  readonly targetLsn?: string;
}

function slotTime(d: DrillRecord): number {
  const t = Date.parse(d.slot);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** The drill with the latest slot (ties: the later id). */
export function lastDrill(drills: readonly DrillRecord[]): DrillRecord | undefined {
  let best: DrillRecord | undefined;
  for (const d of drills) {
    if (best === undefined || slotTime(d) > slotTime(best) || (slotTime(d) === slotTime(best) && d.id > best.id)) best = d;
  }
  return best;
}

/** The newest drill that finished (PASSED or FAILED), by id. */
export function lastFinishedDrill(drills: readonly DrillRecord[]): DrillRecord | undefined {
  let best: DrillRecord | undefined;
  for (const d of drills) if (d.status !== 'RUNNING' && (best === undefined || d.id > best.id)) best = d;
  return best;
}

function describeLast(d: DrillRecord | undefined, now: Date): string {
  if (d === undefined) return 'no drill yet';
  const started = Date.parse(d.startedAt);
  const ago = Number.isNaN(started) ? '' : ` ${formatAge(Math.max(0, (now.getTime() - started) / 1000))} ago`;
  return `last drill ${d.id}${ago} ${d.status}`;
}

/** 32-bit FNV-1a: a stable, well-spread fraction from the slot (no randomness in the pure core). */
function fraction(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 0x1_0000_0000;
}

/**
 * A pseudo-random LSN between the end of the backup that starts the recoverable window and the
 * start of the newest archived segment (replay always has records past it). undefined when the
 * window is empty (only the backup itself): the drill then restores latest.
 */
export function randomTargetLsn(config: ServerConfig, observed: ObservedServer, slot: string, now: Date): bigint | undefined {
  const segSize = observed.identity?.walSegmentSize;
  if (segSize === undefined) return undefined;
  const pitr = config.retention.pitrWindowSeconds === undefined ? { now } : { pitrWindowSeconds: config.retention.pitrWindowSeconds, now };
  const window = recoverableWindow(observed.backups, observed.wal, pitr, segSize);
  if (window === undefined || window.from.lsn === null || window.to.wal === null) return undefined;
  const from = parseLsn(window.from.lsn);
  const to = segmentStartLsn(segmentNumber(window.to.wal, segSize), segSize);
  if (to <= from) return undefined;
  const span = to - from;
  // 2^32 steps are plenty to place a point anywhere in the span.
  const offset = (span * BigInt(Math.floor(fraction(`${config.name}|${slot}`) * 0x1_0000_0000))) / 0x1_0000_0000n;
  return from + offset;
}

export function planDrill(config: ServerConfig, observed: ObservedServer, now: Date): DrillDecision | undefined {
  const drill: DrillSettings | undefined = config.drill;
  if (drill === undefined) return undefined;
  const tzText = drill.timezone === 'UTC' ? '' : ` (${drill.timezone})`;
  const fired = previousFireTime(drill.schedule, drill.timezone, now);
  const slot = (fired ?? now).toISOString();
  const last = lastDrill(observed.drills ?? []);
  const notDue = (reason: string): DrillDecision => ({ due: false, slot, reason, subject: drill.target });
  if (fired === undefined) return notDue(`drill schedule "${drill.schedule}"${tzText} has not fired yet; ${describeLast(last, now)}`);
  const firedText = `schedule "${drill.schedule}"${tzText} fired ${formatInstant(fired)}`;
  if (last !== undefined && slotTime(last) >= fired.getTime()) {
    return notDue(`${firedText}; ${describeLast(last, now)} covers it`);
  }
  if (!observed.backups.some((b) => b.status === 'DONE')) return notDue(`${firedText}; no DONE backup to restore yet`);
  if (drill.target === 'random') {
    const lsn = randomTargetLsn(config, observed, slot, now);
    if (lsn !== undefined) {
      const text = formatLsn(lsn);
      return {
        due: true,
        slot,
        reason: `${firedText}; ${describeLast(last, now)}; random point inside the recoverable window`,
        subject: `lsn ${text}`,
        targetLsn: text,
      };
    }
    return {
      due: true,
      slot,
      reason: `${firedText}; ${describeLast(last, now)}; the recoverable window has no point after its first backup, so latest`,
      subject: 'latest',
    };
  }
  return { due: true, slot, reason: `${firedText}; ${describeLast(last, now)}`, subject: 'latest' };
}

/** The last drill as views show it (status, list): plain data, null fields when not measured. */
export function drillView(d: DrillRecord) {
  const rto = d.restoreSeconds !== undefined && d.replaySeconds !== undefined ? Math.round((d.restoreSeconds + d.replaySeconds) * 10) / 10 : null;
  return {
    id: d.id,
    status: d.status,
    startedAt: d.startedAt,
    finishedAt: d.finishedAt ?? null,
    target: d.target,
    backupId: d.backupId ?? null,
    restoreSeconds: d.restoreSeconds ?? null,
    replaySeconds: d.replaySeconds ?? null,
    /** restore + replay: the recovery time this drill measured. */
    rtoSeconds: rto,
    check: d.check ?? null,
    timedOut: d.timedOut === true,
    errors: d.errors,
  };
}

export type DrillView = ReturnType<typeof drillView>;

/** One line: "20261202T140000Z PASSED 2h ago, backup …, restore 3.1s + replay 5.2s = RTO 8.3s; check …". */
export function drillText(v: DrillView, now: Date): string {
  const t = Date.parse(v.startedAt);
  const ago = Number.isNaN(t) ? '' : ` ${formatAge(Math.max(0, (now.getTime() - t) / 1000))} ago`;
  const parts = [`${v.id} ${v.status}${ago}, target ${v.target}`];
  if (v.backupId !== null) parts.push(`backup ${v.backupId}`);
  if (v.restoreSeconds !== null) {
    parts.push(
      v.replaySeconds === null ? `restore ${v.restoreSeconds}s` : `restore ${v.restoreSeconds}s + replay ${v.replaySeconds}s = RTO ${v.rtoSeconds ?? '?'}s`,
    );
  }
  const tail = v.errors.length > 0 ? `; ${v.timedOut ? 'timed out: ' : ''}${v.errors.join('; ')}` : v.check !== null ? `; ${v.check.detail}` : '';
  return `${parts.join(', ')}${tail}`;
}
