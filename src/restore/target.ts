/**
 * Recovery targets as data: what `pgbk restore` was asked to reach, parsed and validated once at
 * the command line, then used to choose a backup (choose-backup.ts) and written into
 * postgresql.auto.conf (pg/recovery-conf.ts). Pure: no I/O.
 */

import { PgbkError } from '../errors.js';
import { formatLsn, parseLsn } from '../pg/lsn.js';
import type { RecoveryTargetSetting } from '../pg/recovery-conf.js';

export type RecoveryTarget =
  /** `text` is passed to PostgreSQL as given (it keeps microseconds); `micros` is for comparing. */
  | { readonly kind: 'time'; readonly text: string; readonly micros: bigint }
  | { readonly kind: 'lsn'; readonly lsn: bigint }
  | { readonly kind: 'xid'; readonly xid: string }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'immediate' }
  /** No target: replay every archived WAL file (PostgreSQL's default). */
  | { readonly kind: 'latest' };

export type TargetKind = RecoveryTarget['kind'];

export type TargetAction = 'pause' | 'promote' | 'shutdown';

export type TargetTimeline = { readonly kind: 'latest' } | { readonly kind: 'current' } | { readonly kind: 'number'; readonly timeline: number };

export const TARGET_ACTIONS: readonly TargetAction[] = ['pause', 'promote', 'shutdown'];

// PostgreSQL prints timestamptz as "2026-11-24 10:00:00.123456+00"; ISO-8601 uses "T" and "Z".
// Both are accepted; the zone is mandatory (or the word UTC) so a target never depends on the
// time zone of the machine pgbk or PostgreSQL runs on. Up to nanoseconds are accepted (`date
// +%FT%T.%NZ` prints them) and cut to microseconds: commit times are whole microseconds, so a commit
// is at or before T exactly when it is at or before T cut to the microsecond (PostgreSQL itself
// would round, which could take in a commit up to half a microsecond after T).
const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)$/i;

/** Microseconds since the Unix epoch of an ISO-8601 time with a zone; throws USAGE otherwise. */
export function parseTargetTime(text: string): bigint {
  const m = TIME_RE.exec(text.trim());
  if (m === null) {
    throw new PgbkError('USAGE', `--target-time ${text}: not an ISO-8601 time with a time zone`, {
      hint: 'write e.g. 2026-11-24T10:15:00Z or "2026-11-24 10:15:00.123456+01:00"',
    });
  }
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as readonly string[];
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw new PgbkError('USAGE', `--target-time ${text}: no such date or time`);
  }
  const offsetMinutes = parseZone(zone ?? 'Z');
  const fraction = BigInt((frac ?? '').slice(0, 6).padEnd(6, '0'));
  return BigInt(ms) * 1000n + fraction - BigInt(offsetMinutes) * 60_000_000n;
}

function parseZone(zone: string): number {
  const z = zone.toUpperCase();
  if (z === 'Z' || z === 'UTC') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(z);
  if (m === null) throw new PgbkError('USAGE', `bad time zone "${zone}"`);
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? '0');
  if (Number(m[2]) > 15 || Number(m[3] ?? '0') > 59) throw new PgbkError('USAGE', `bad time zone "${zone}"`);
  return m[1] === '-' ? -minutes : minutes;
}

/** ISO-8601 UTC with microseconds, for messages ("2026-11-24T10:15:00.123456Z"). */
export function formatMicros(micros: bigint): string {
  const ms = micros / 1000n;
  const rest = micros % 1000n;
  const iso = new Date(Number(ms)).toISOString(); // …SS.mmmZ
  return `${iso.slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

/** The same instant as PostgreSQL input with a numeric zone: "2026-11-24 10:15:00.123456+00". */
export function formatPgTime(micros: bigint): string {
  return `${formatMicros(micros).replace('T', ' ').slice(0, -1)}+00`;
}

/** Microseconds since the epoch of an ISO time stored in backup.json (Date-parsable). */
export function isoToMicros(iso: string): bigint {
  const fine = TIME_RE.exec(iso);
  if (fine !== null) return parseTargetTime(iso);
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new PgbkError('CATALOG', `not a time: "${iso}"`);
  return BigInt(ms) * 1000n;
}

export function parseTargetLsn(text: string): bigint {
  try {
    return parseLsn(text);
  } catch {
    throw new PgbkError('USAGE', `--target-lsn ${text}: not an LSN`, { hint: 'an LSN looks like 0/3000060' });
  }
}

/** A transaction id as txid_current() prints it (an epoch-qualified 64-bit number is accepted). */
export function parseTargetXid(text: string): string {
  if (!/^\d{1,20}$/.test(text) || BigInt(text) < 3n || BigInt(text) > 0xffffffffffffffffn) {
    throw new PgbkError('USAGE', `--target-xid ${text}: not a transaction id (a number ≥ 3)`);
  }
  return BigInt(text).toString();
}

export function parseTargetName(text: string): string {
  // pg_create_restore_point accepts names up to MAXFNAMELEN-1 (63) bytes.
  if (text === '' || Buffer.byteLength(text) > 63 || /[\n\r\0]/.test(text)) {
    throw new PgbkError('USAGE', `--target-name: a restore point name is 1 to 63 bytes on one line`);
  }
  return text;
}

export function parseTargetAction(text: string): TargetAction {
  const found = TARGET_ACTIONS.find((a) => a === text);
  if (found === undefined) throw new PgbkError('USAGE', `--target-action ${text}: expected pause, promote or shutdown`);
  return found;
}

export function parseTargetTimeline(text: string): TargetTimeline {
  if (text === 'latest') return { kind: 'latest' };
  if (text === 'current') return { kind: 'current' };
  if (/^\d{1,10}$/.test(text) && Number(text) >= 1 && Number(text) <= 0xffffffff) {
    return { kind: 'number', timeline: Number(text) };
  }
  throw new PgbkError('USAGE', `--target-timeline ${text}: expected a timeline number, latest or current`);
}

/** One line for summaries: "time 2026-11-24T10:15:00Z", "LSN 0/3000060", "latest (all archived WAL)". */
export function describeTarget(target: RecoveryTarget): string {
  switch (target.kind) {
    case 'time':
      return `time ${target.text}`;
    case 'lsn':
      return `LSN ${formatLsn(target.lsn)}`;
    case 'xid':
      return `transaction ${target.xid}`;
    case 'name':
      return `restore point "${target.name}"`;
    case 'immediate':
      return 'immediate (end of the backup: the earliest consistent point)';
    case 'latest':
      return 'latest (all archived WAL)';
    default: {
      const never: never = target;
      throw new PgbkError('INTERNAL', `unknown target ${String(never)}`);
    }
  }
}

export function describeTimeline(t: TargetTimeline): string {
  switch (t.kind) {
    case 'latest':
      return 'latest';
    case 'current':
      return 'current';
    case 'number':
      return String(t.timeline);
    default: {
      const never: never = t;
      throw new PgbkError('INTERNAL', `unknown timeline ${String(never)}`);
    }
  }
}

/** The recovery_target_* setting for a parsed target (written to postgresql.auto.conf). */
export function targetSetting(target: RecoveryTarget): RecoveryTargetSetting {
  switch (target.kind) {
    case 'time':
      // Numeric offset only: PostgreSQL reads recovery_target_time before timezone abbreviations
      // (even "Z") are loaded, and refuses them.
      return { kind: 'time', value: formatPgTime(target.micros) };
    case 'lsn':
      return { kind: 'lsn', value: formatLsn(target.lsn) };
    case 'xid':
      return { kind: 'xid', value: target.xid };
    case 'name':
      return { kind: 'name', value: target.name };
    case 'immediate':
      return { kind: 'immediate' };
    case 'latest':
      return { kind: 'latest' };
    default: {
      const never: never = target;
      throw new PgbkError('INTERNAL', `unknown target ${String(never)}`);
    }
  }
}
