/**
 * backup.json as read from disk → a BackupRecord, checked once here so nothing downstream re-checks
 * optional fields: each status must carry the fields it always has (types.ts), with the right
 * types. Pure: text in, record or a message naming the field out. The object returned is the one
 * parsed (not rebuilt), so writing it back keeps its bytes and key order.
 */

import type { BackupRecord, BackupStatus } from './types.js';

/** A backup.json that is not a valid record; `field` is the JSON path of the first bad field. */
export class BackupRecordError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'BackupRecordError';
  }
}

type Json = Record<string, unknown>;

const STATUSES: readonly BackupStatus[] = ['STARTED', 'WAITING_FOR_WAL', 'DONE', 'FAILED'];
const LSN_RE = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
const WAL_RE = /^[0-9A-Fa-f]{24}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const BACKUP_ID_RE = /^\d{8}T\d{6}Z$/;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Checks one field of one object; `where` is the status that requires it, for the message. */
class Fields {
  constructor(
    private readonly o: Json,
    private readonly prefix: string,
    private readonly where: string,
  ) {}

  private fail(key: string, want: string): never {
    const field = `${this.prefix}${key}`;
    const v = this.o[key];
    const what = v === undefined ? `lacks ${field} (${want})` : `has ${field} = ${show(v)}, expected ${want}`;
    throw new BackupRecordError(`backup.json ${what}${this.where}`, field);
  }

  private check(key: string, optional: boolean, want: string, ok: (v: unknown) => boolean): void {
    const v = this.o[key];
    if (v === undefined && optional) return;
    if (!ok(v)) this.fail(key, want);
  }

  string(key: string, optional = false): void {
    this.check(key, optional, 'a string', (v) => typeof v === 'string');
  }
  time(key: string, optional = false): void {
    this.check(key, optional, 'an ISO time', (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v)));
  }
  oneOf(key: string, values: readonly string[]): void {
    this.check(key, false, `one of ${values.join(', ')}`, (v) => typeof v === 'string' && values.includes(v));
  }
  count(key: string, optional = false): void {
    this.check(key, optional, 'a whole number ≥ 0', (v) => Number.isSafeInteger(v) && (v as number) >= 0);
  }
  positive(key: string, optional = false): void {
    this.check(key, optional, 'a whole number > 0', (v) => Number.isSafeInteger(v) && (v as number) > 0);
  }
  match(key: string, re: RegExp, want: string, optional = false): void {
    this.check(key, optional, want, (v) => typeof v === 'string' && re.test(v));
  }
  object(key: string, optional = false): Fields | undefined {
    const v = this.o[key];
    if (v === undefined && optional) return undefined;
    if (!isObject(v)) this.fail(key, 'an object');
    return new Fields(v, `${this.prefix}${key}.`, this.where);
  }
  /** A process: who owns a STARTED backup, or a restore reading a DONE one. */
  process(key: string, timeKey: 'startedAt' | 'since', optional = false): void {
    const p = this.object(key, optional);
    if (p === undefined) return;
    p.positive('pid');
    p.string('host');
    p.time(timeKey);
    p.string('processStart', true);
  }
  /** A list of processes (DONE's inUse), each checked as `key[i]`. */
  processes(key: string, timeKey: 'since'): void {
    const v = this.o[key];
    if (v === undefined) return;
    if (!Array.isArray(v)) this.fail(key, 'a list');
    const byIndex: Json = Object.fromEntries(v.map((e: unknown, i) => [`[${i}]`, e]));
    const list = new Fields(byIndex, `${this.prefix}${key}`, this.where);
    for (let i = 0; i < v.length; i++) list.process(`[${i}]`, timeKey);
  }
  /** Stored file → sha256 hex. */
  checksums(key: string, optional: boolean): void {
    const c = this.object(key, optional);
    if (c === undefined) return;
    for (const name of c.keys()) c.match(name, SHA256_RE, 'a sha256 (64 lowercase hex digits)');
  }
  keys(): string[] {
    return Object.keys(this.o);
  }
}

/** The copy fields (WAITING_FOR_WAL and DONE: all required; FAILED: each one optional). */
function checkCopy(f: Fields, optional: boolean): void {
  f.positive('timeline', optional);
  f.match('beginLsn', LSN_RE, 'an LSN like "0/3000028"', optional);
  f.match('endLsn', LSN_RE, 'an LSN like "0/3000100"', optional);
  f.match('beginWal', WAL_RE, 'a WAL segment name (24 hex digits)', optional);
  f.match('endWal', WAL_RE, 'a WAL segment name (24 hex digits)', optional);
  f.time('endTime', optional);
  const sizes = f.object('sizes', optional);
  sizes?.count('data');
  sizes?.count('stored');
  f.checksums('checksums', optional);
  f.count('copiedBytes', true);
  f.count('reusedBytes', true);
  f.count('fileCount', true);
  f.match('reusedFrom', BACKUP_ID_RE, 'a backup id', true);
}

export interface RecordExpectation {
  /** The backup directory's name: the record must say the same id. */
  readonly id: string;
  /** The catalog's server: the record must say the same server. */
  readonly server: string;
}

/** The record in a backup.json's text, or a BackupRecordError naming the first bad field. */
export function parseBackupRecord(text: string, expect: RecordExpectation): BackupRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new BackupRecordError(`backup.json is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(data)) throw new BackupRecordError('backup.json is not an object');
  const o = data;
  if (o.formatVersion !== 1) throw new BackupRecordError(`backup.json has unknown formatVersion ${String(o.formatVersion)}`, 'formatVersion');
  if (o.id !== expect.id) throw new BackupRecordError(`backup.json says id ${String(o.id)}, its directory is ${expect.id}`, 'id');
  if (o.server !== expect.server) throw new BackupRecordError(`backup.json says server ${String(o.server)}, its catalog is ${expect.server}`, 'server');
  if (typeof o.status !== 'string' || !(STATUSES as readonly string[]).includes(o.status)) {
    throw new BackupRecordError(`backup.json has invalid status ${String(o.status)}`, 'status');
  }
  const status = o.status as BackupStatus;
  const f = new Fields(o, '', ` (status ${status})`);
  f.string('slot');
  f.time('beginTime');
  f.oneOf('method', ['basebackup', 'ssh']);
  f.oneOf('compression', ['zstd', 'gzip', 'none']);
  f.oneOf('keep', ['none', 'full', 'standalone']);
  f.positive('pgVersion');
  f.match('systemIdentifier', /^\d{1,20}$/, 'a decimal system identifier');
  switch (status) {
    case 'STARTED':
      f.process('owner', 'startedAt');
      break;
    case 'WAITING_FOR_WAL':
      checkCopy(f, false);
      break;
    case 'DONE':
      checkCopy(f, false);
      f.processes('inUse', 'since');
      break;
    case 'FAILED':
      f.string('error');
      checkCopy(f, true);
      break;
    default: {
      const never: never = status;
      throw new BackupRecordError(`backup.json has invalid status ${String(never)}`, 'status');
    }
  }
  return o as unknown as BackupRecord;
}
