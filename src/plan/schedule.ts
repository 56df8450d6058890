/**
 * Is a base backup due? Level-triggered (DESIGN.md §1, §5): the answer depends only on the
 * schedule, the backups that exist and `now`, never on when pgbk last ran. Backups are compared by
 * the schedule slot they were taken for, not by wall-clock begin time, so a backup taken late for
 * the 03:00 slot still satisfies it, and a week of downtime produces one catch-up backup, not seven.
 */

import type { ServerConfig } from '../config/resolved.js';
import { nextFireTime, previousFireTime } from '../config/cron.js';
import type { BackupRecord } from '../model/types.js';
import { formatInstant, formatIsoText } from './time-text.js';

export interface DueDecision {
  readonly due: boolean;
  /** The slot (ISO) a backup taken now would satisfy: the last fire time, or now without one. */
  readonly slot: string;
  readonly reason: string;
}

/** A backup that satisfies (or is about to satisfy) its slot: FAILED ones do not, so they are retried. */
function countsForSlot(b: BackupRecord): boolean {
  return b.status === 'DONE' || b.status === 'STARTED' || b.status === 'WAITING_FOR_WAL';
}

function slotTime(b: BackupRecord): number {
  const t = Date.parse(b.slot);
  // A record with an unreadable slot falls back to its begin time; with neither it sorts oldest,
  // which can only make a backup due (safe), never suppress one.
  if (!Number.isNaN(t)) return t;
  const begin = Date.parse(b.beginTime);
  return Number.isNaN(begin) ? Number.NEGATIVE_INFINITY : begin;
}

/** The backup with the latest slot; ties go to the later id (the later attempt). */
function newestBySlot(backups: readonly BackupRecord[]): BackupRecord | undefined {
  let best: BackupRecord | undefined;
  for (const b of backups) {
    if (best === undefined) {
      best = b;
      continue;
    }
    const d = slotTime(b) - slotTime(best);
    if (d > 0 || (d === 0 && b.id > best.id)) best = b;
  }
  return best;
}

function describeBackup(b: BackupRecord): string {
  const state = b.status === 'DONE' ? '' : ` ${b.status}`;
  return `newest backup ${b.id}${state} (slot ${formatIsoText(b.slot)})`;
}

export function isBackupDue(server: ServerConfig, backups: readonly BackupRecord[], now: Date): DueDecision {
  const schedule = server.backup.schedule;
  const tz = server.backup.timezone;
  const tzText = tz === 'UTC' ? '' : ` (${tz})`;
  const fired = schedule === undefined ? undefined : previousFireTime(schedule, tz, now);
  const slot = (fired ?? now).toISOString();
  const newest = newestBySlot(backups.filter(countsForSlot));

  if (schedule === undefined) {
    // Without a schedule backups are one-off (`pgbk backup`); plan() warns when none exists.
    return {
      due: false,
      slot,
      reason: newest === undefined ? 'no schedule configured; no backup yet' : `no schedule configured; ${describeBackup(newest)}`,
    };
  }

  if (newest === undefined) {
    const firedText = fired === undefined ? '' : `; schedule "${schedule}"${tzText} fired ${formatInstant(fired)}`;
    return { due: true, slot, reason: `no backup yet${firedText}` };
  }

  if (fired === undefined) {
    return { due: false, slot, reason: `schedule "${schedule}"${tzText} has not fired yet; ${describeBackup(newest)}` };
  }

  const firedText = `schedule "${schedule}"${tzText} fired ${formatInstant(fired)}`;
  if (fired.getTime() > slotTime(newest)) {
    return { due: true, slot, reason: `${firedText}; ${describeBackup(newest)}` };
  }
  return { due: false, slot, reason: `${firedText}; ${describeBackup(newest)} covers it` };
}

export interface NextBackup {
  /** ISO time of the next schedule fire after now. */
  readonly time: string;
  readonly schedule: string;
  readonly timezone: string;
  /** A backup is already due now (the last slot has none): the next apply or daemon tick takes it. */
  readonly dueNow: boolean;
}

/**
 * When the schedule next asks for a backup (for `status`). undefined without a schedule, or when it
 * never fires again. Pure, like isBackupDue, whose verdict says whether one is already due now.
 */
export function nextScheduledBackup(server: ServerConfig, backups: readonly BackupRecord[], now: Date): NextBackup | undefined {
  const schedule = server.backup.schedule;
  if (schedule === undefined) return undefined;
  const next = nextFireTime(schedule, server.backup.timezone, now);
  if (next === undefined) return undefined;
  return { time: next.toISOString(), schedule, timezone: server.backup.timezone, dueNow: isBackupDue(server, backups, now).due };
}
