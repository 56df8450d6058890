/**
 * The plan as JSON: pgbk's stable machine interface (`plan --json`, `plan -o plan.json`, then
 * `apply plan.json`). formatVersion "MAJOR.MINOR": minor bumps only add fields, so a reader accepts
 * any minor of its major and ignores fields it does not know; an unknown major is refused.
 * Reading is strict about what it does use: a saved plan is executed, so a malformed one must be
 * rejected with the reason, never half-understood.
 */

import { PgbkError } from '../errors.js';
import type { Action, Plan, PlanWarning, WarningCode } from '../model/types.js';
import { ACTION_ORDER } from '../model/types.js';

export const PLAN_FORMAT_VERSION = '1.0';
const SUPPORTED_MAJOR = 1;

const WARNING_CODES: readonly WarningCode[] = [
  'wal-gap',
  'rpo-exceeded',
  'min-redundancy',
  'no-backup-yet',
  'unknown-files',
  'quarantined-files',
  'identity-unknown',
  'backup-in-use',
  'server-unreachable',
  'catalog-missing',
  'drill-failed',
  'rpo-objective',
  'rto-objective',
  'archiving-refused',
  'backup-unrestorable',
  'newer-timeline',
];

/** Field order is fixed (server, kind, subject, reason, then the kind's details) for stable bytes. */
function actionToJson(a: Action): Record<string, unknown> {
  const base = { server: a.server, kind: a.kind, subject: a.subject, reason: a.reason };
  switch (a.kind) {
    case 'archive-wal':
      return { ...base, files: a.files };
    case 'base-backup':
      return { ...base, slot: a.slot };
    case 'finish-backup':
    case 'delete-backup':
    case 'cleanup-failed':
      return { ...base, backupId: a.backupId };
    case 'prune-wal':
      return { ...base, bytes: a.bytes, segments: a.segments, backupFiles: a.backupFiles };
    case 'quarantine':
      return { ...base, file: a.file };
    case 'restore-drill':
      return { ...base, slot: a.slot, ...(a.targetLsn === undefined ? {} : { targetLsn: a.targetLsn }) };
    case 'sweep-chunks':
      return base;
    default: {
      const unreachable: never = a;
      throw new Error(`unhandled action ${JSON.stringify(unreachable)}`);
    }
  }
}

export function renderPlanJson(plan: Plan): string {
  const doc = {
    formatVersion: PLAN_FORMAT_VERSION,
    now: plan.now,
    actions: plan.actions.map(actionToJson),
    warnings: plan.warnings.map((w) => ({ server: w.server, code: w.code, message: w.message })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function bad(message: string): PgbkError {
  return new PgbkError('USAGE', `invalid plan file: ${message}`, {
    hint: 'write a fresh one with `pgbk plan -o FILE`',
  });
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Json, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw bad(`${where}.${key} must be a string`);
  return v;
}

function num(o: Json, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${where}.${key} must be a whole number >= 0`);
  return v;
}

function strings(o: Json, key: string, where: string): readonly string[] {
  const v = o[key];
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) {
    throw bad(`${where}.${key} must be an array of strings`);
  }
  return v;
}

function parseAction(v: unknown, where: string): Action {
  if (!isObject(v)) throw bad(`${where} must be an object`);
  const kind = str(v, 'kind', where);
  const base = { server: str(v, 'server', where), subject: str(v, 'subject', where), reason: str(v, 'reason', where) };
  const known = ACTION_ORDER.find((k) => k === kind);
  if (known === undefined) throw bad(`${where}.kind "${kind}" is not an action this pgbk knows`);
  switch (known) {
    case 'archive-wal':
      return { kind: known, ...base, files: strings(v, 'files', where) };
    case 'base-backup':
      return { kind: known, ...base, slot: str(v, 'slot', where) };
    case 'finish-backup':
    case 'delete-backup':
    case 'cleanup-failed':
      return { kind: known, ...base, backupId: str(v, 'backupId', where) };
    case 'prune-wal':
      return {
        kind: known,
        ...base,
        segments: strings(v, 'segments', where),
        backupFiles: strings(v, 'backupFiles', where),
        bytes: num(v, 'bytes', where),
      };
    case 'quarantine':
      return { kind: known, ...base, file: str(v, 'file', where) };
    case 'restore-drill':
      return { kind: known, ...base, slot: str(v, 'slot', where), ...(v['targetLsn'] === undefined ? {} : { targetLsn: str(v, 'targetLsn', where) }) };
    case 'sweep-chunks':
      return { kind: known, ...base };
    default: {
      const unreachable: never = known;
      throw bad(`${where}.kind "${String(unreachable)}" is not handled`);
    }
  }
}

function parseWarning(v: unknown, where: string): PlanWarning {
  if (!isObject(v)) throw bad(`${where} must be an object`);
  const code = str(v, 'code', where);
  const known = WARNING_CODES.find((c) => c === code);
  if (known === undefined) throw bad(`${where}.code "${code}" is not a warning this pgbk knows`);
  return { server: str(v, 'server', where), code: known, message: str(v, 'message', where) };
}

export function parsePlanJson(text: string): Plan {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isObject(doc)) throw bad('the top level must be an object');
  const version = doc['formatVersion'];
  const m = typeof version === 'string' ? /^(\d+)\.(\d+)$/.exec(version) : null;
  if (m === null) throw bad('formatVersion must be a string like "1.0"');
  if (Number(m[1]) !== SUPPORTED_MAJOR) {
    throw new PgbkError('USAGE', `plan file format ${String(version)} is not supported: this pgbk reads format ${SUPPORTED_MAJOR}.x`, {
      hint: 'write the plan again with this pgbk version (`pgbk plan -o FILE`)',
    });
  }
  const now = str(doc, 'now', 'plan');
  if (Number.isNaN(Date.parse(now))) throw bad(`plan.now "${now}" is not a time`);
  const actions = doc['actions'];
  const warnings = doc['warnings'];
  if (!Array.isArray(actions)) throw bad('plan.actions must be an array');
  if (!Array.isArray(warnings)) throw bad('plan.warnings must be an array');
  return {
    now,
    actions: actions.map((a, i) => parseAction(a, `actions[${i}]`)),
    warnings: warnings.map((w, i) => parseWarning(w, `warnings[${i}]`)),
  };
}
