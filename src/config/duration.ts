/**
 * Durations in the config (`recoveryWindow: 14d`, `maxLag: 5m`): a whole number and one unit.
 * Months and years are deliberately absent: their length varies, and a retention window must mean
 * the same number of seconds on every run.
 */

import { PgbkError } from '../errors.js';

/** Seconds per unit, largest first. */
const UNITS: readonly (readonly [unit: string, seconds: number])[] = [
  ['w', 7 * 86400],
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

const DURATION_RE = /^([0-9]+)(s|m|h|d|w)$/;

/** The pattern the schema uses for durations (kept identical so both accept the same strings). */
export const DURATION_PATTERN = '^[0-9]+(s|m|h|d|w)$';

/**
 * The longest duration pgbk accepts: 100 years. Longer ones are typos (an extra digit, w for d), and
 * any duration may end up in a timer (daemon intervals, archiveTimeout), which must stay
 * meaningful; lib/timer.ts chains the delays beyond Node's 2^31 ms limit up to this bound.
 */
export const MAX_DURATION_SECONDS = 36500 * 86400;

/** The message for a duration above MAX_DURATION_SECONDS (shared by config and CLI errors). */
export function tooLargeText(s: string): string {
  return `duration "${s}" is too large: at most ${formatDuration(MAX_DURATION_SECONDS)} (100 years)`;
}

/** "14d" → 1209600. Throws PgbkError('CONFIG') naming the bad string. */
export function parseDuration(s: string): number {
  const m = DURATION_RE.exec(s);
  const unit = UNITS.find(([u]) => u === m?.[2]);
  if (m === null || unit === undefined) {
    throw new PgbkError('CONFIG', `invalid duration "${s}": expected a whole number and a unit, e.g. 30s, 5m, 12h, 14d, 2w`);
  }
  const seconds = Number(m[1]) * unit[1];
  if (!Number.isSafeInteger(seconds) || seconds > MAX_DURATION_SECONDS) {
    throw new PgbkError('CONFIG', tooLargeText(s));
  }
  return seconds;
}

/**
 * 1209600 → "14d", 300 → "5m", 90 → "90s": the largest unit that represents it exactly, up to days.
 * Weeks are accepted on input but not produced: retention is reasoned about in days (Barman prints
 * "RECOVERY WINDOW OF 14 DAYS"), and "14d" reads better in a plan than "2w".
 */
export function formatDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new PgbkError('INTERNAL', `formatDuration: ${seconds} is not a whole number of seconds >= 0`);
  }
  if (seconds === 0) return '0s';
  for (const [unit, size] of UNITS) {
    if (unit === 'w') continue;
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`; // unreachable: the last unit is 1 s
}
