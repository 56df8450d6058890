/**
 * Cron schedules. Two libraries read the same expression: node-cron wakes the daemon, croner
 * computes the last fire time ≤ now that the planner compares with the newest backup's slot
 * (node-cron has no "previous fire time"). An expression is accepted only if both accept it and
 * nothing in it is read differently by the two, so the daemon and the planner never disagree.
 *
 * Pure: no clock (`now` is a parameter); croner and node-cron's validator only compute.
 */

import { createRequire } from 'node:module';
import { Cron } from 'croner';
import type { validateDetailed as ValidateDetailed } from 'node-cron';
import { PgbkError } from '../errors.js';

/**
 * node-cron is needed only to validate (the daemon imports it itself to schedule): loaded on the
 * first validation, synchronously (its CommonJS build), so reading a schedule — `status`'s next
 * backup — does not pay for it.
 */
let nodeCronValidate: typeof ValidateDetailed | undefined;
function validateDetailed(expr: string): ReturnType<typeof ValidateDetailed> {
  nodeCronValidate ??= (createRequire(import.meta.url)('node-cron') as { validateDetailed: typeof ValidateDetailed }).validateDetailed;
  return nodeCronValidate(expr);
}

/**
 * croner's options for `timezone`. UTC is a fixed offset of 0 (no DST, no Intl): croner's
 * utcOffset computes the same runs without building an Intl.DateTimeFormat, whose first use with a
 * time zone costs ~20 ms of ICU set-up — most of `status`'s time past Node's start (issue 13 item 5).
 */
function cronOptions(timezone: string): { paused: true; timezone?: string; utcOffset?: number } {
  return timezone === 'UTC' || timezone === 'Etc/UTC' ? { utcOffset: 0, paused: true } : { timezone, paused: true };
}

/** A fixed reference, not the clock: an expression with no run after it can never fire. */
const NEVER_FIRES_REFERENCE = new Date('2000-01-01T00:00:00Z');

/**
 * Error message if `timezone` is not an IANA zone this Node.js knows, else undefined. UTC, the zone
 * every schedule without one is checked in, is known without asking Intl: that first
 * Intl.DateTimeFormat with a time zone costs ~15 ms of ICU set-up in every command that loads the
 * configuration (apply, restore, list, status…), as in cronOptions above.
 */
export function validateTimezone(timezone: string): string | undefined {
  if (timezone === 'UTC' || timezone === 'Etc/UTC') return undefined;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return undefined;
  } catch (err) {
    if (err instanceof RangeError) {
      return `unknown time zone "${timezone}" (use an IANA name such as UTC or Europe/Berlin)`;
    }
    throw err;
  }
}

/**
 * Error message if `expr` is not a schedule pgbk accepts in `timezone`, else undefined.
 * Refused besides plain syntax errors: anything only one library accepts (7 fields, tabs, dates
 * that do not exist such as "0 0 30 2 *"), and a restricted day-of-month together with a restricted
 * day-of-week, which croner reads as "either" (Vixie cron) and node-cron as "both".
 */
export function validateCron(expr: string, timezone: string): string | undefined {
  const tzError = validateTimezone(timezone);
  if (tzError !== undefined) return tzError;
  const bad = (why: string): string => `invalid cron expression "${expr}": ${why}`;

  let cron: Cron;
  try {
    cron = new Cron(expr, cronOptions(timezone));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return bad(message.replace(/^CronPattern:\s*/, ''));
  }
  const nodeCron = validateDetailed(expr);
  if (!nodeCron.valid) {
    return bad(nodeCron.errors[0]?.message ?? 'rejected by node-cron (the daemon scheduler)');
  }
  const fields = expr.trim().split(/\s+/);
  if (!expr.trim().startsWith('@')) {
    // 6 fields = leading seconds; day-of-month and day-of-week are the 3rd and 5th of the last five.
    const [dayOfMonth, , dayOfWeek] = fields.slice(-3);
    if (isRestricted(dayOfMonth) && isRestricted(dayOfWeek)) {
      return bad('restricts both day-of-month and day-of-week, which cron implementations read differently ' + '("either" vs "both"); set one of them to *');
    }
  }
  if (cron.nextRun(NEVER_FIRES_REFERENCE) === null) {
    return bad('never fires');
  }
  return undefined;
}

function isRestricted(field: string | undefined): boolean {
  return field !== undefined && field !== '*' && field !== '?';
}

/**
 * The latest time ≤ `now` at which `expr` fires in `timezone`, or undefined if it never fired
 * before `now`. A run exactly at `now` counts (the slot it starts is due). Across a DST gap a run
 * at a local time that does not exist happens once, at the end of the gap; in the repeated hour it
 * happens once, at the first occurrence.
 * Throws PgbkError('CONFIG') for an expression or zone validateCron would refuse to parse.
 */
export function previousFireTime(expr: string, timezone: string, now: Date): Date | undefined {
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) throw new PgbkError('INTERNAL', 'previousFireTime: now is an invalid Date');
  let cron: Cron;
  try {
    cron = new Cron(expr, cronOptions(timezone));
  } catch (err) {
    throw new PgbkError('CONFIG', `invalid cron expression "${expr}" (timezone ${timezone})`, { cause: err });
  }
  // croner returns runs strictly before its reference, but a run at exactly `now` is due.
  // Runs fall on whole seconds, so at most one lies in (now, now + 1 s): ask for two and keep the
  // newest that is ≤ now.
  const runs = cron.previousRuns(2, new Date(nowMs + 1000));
  return runs.find((run) => run.getTime() <= nowMs);
}

/**
 * The first time strictly after `now` at which `expr` fires in `timezone`, or undefined if it never
 * fires again (`status` shows it as the next scheduled backup). Same parsing rules as previousFireTime.
 */
export function nextFireTime(expr: string, timezone: string, now: Date): Date | undefined {
  if (Number.isNaN(now.getTime())) throw new PgbkError('INTERNAL', 'nextFireTime: now is an invalid Date');
  let cron: Cron;
  try {
    cron = new Cron(expr, cronOptions(timezone));
  } catch (err) {
    throw new PgbkError('CONFIG', `invalid cron expression "${expr}" (timezone ${timezone})`, { cause: err });
  }
  return cron.nextRun(now) ?? undefined;
}
