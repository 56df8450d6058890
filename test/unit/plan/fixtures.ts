/**
 * Builders for planner tests: backups, server configs and WAL names with sensible defaults, so each
 * table row states only what it is about.
 */

import type { ServerConfig, RetentionPolicy } from '../../../src/config/resolved.js';
import { segmentNameFrom } from '../../../src/pg/wal-name.js';
import { parseBackupRecord } from '../../../src/model/parse-backup-record.js';
import type { BackupRecord, BackupStatus, DoneBackup, FailedBackup, ObservedServer, ServerIdentity, StartedBackup } from '../../../src/model/types.js';

export const SEG = 16 * 1024 * 1024;

type OptionalKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];
/** Overrides for a fixture; undefined for an optional field removes the default (the field is absent). */
type Mutable<T> = { -readonly [K in keyof T]?: K extends OptionalKeys<T> ? T[K] | undefined : T[K] };

/** "20261123T030004Z" → "2026-11-23T03:00:04.000Z". */
export function isoOfId(id: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(id);
  if (m === null) throw new Error(`bad backup id ${id}`);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z`;
}

/** "2026-11-23T03:00:04Z" → "20261123T030004Z". */
export function idOfIso(iso: string): string {
  return new Date(iso)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** The fixture with the fields an override set to undefined left out (as absent fields are on disk). */
function withoutUndefined<T>(o: Readonly<Record<string, unknown>>): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Every field any status has: a fixture states what it is about, its status keeps what fits. */
type AnyBackupFields = Omit<StartedBackup, 'status'> & Omit<DoneBackup, 'status'> & Pick<FailedBackup, 'error'> & { status: BackupStatus };
type BackupOverrides = { -readonly [K in keyof AnyBackupFields]?: AnyBackupFields[K] | undefined };

const COPY_KEYS = [
  'timeline',
  'beginLsn',
  'endLsn',
  'beginWal',
  'endWal',
  'endTime',
  'sizes',
  'checksums',
  'copiedBytes',
  'reusedBytes',
  'reusedFrom',
  'fileCount',
];

/**
 * A DONE backup that began at its id and ended 10 minutes later, with WAL 000000010000000000000002,
 * unless overridden. Other statuses keep only their fields: STARTED has no copy fields and an owner,
 * FAILED an error and (unless given) only the end time of its copy fields. The result goes through
 * the parser restore and the planner read records with, so a fixture is always a record that can exist.
 */
export function backup(id: string, o: BackupOverrides = {}): BackupRecord {
  const begin = isoOfId(id);
  const status = o.status ?? 'DONE';
  const all: Record<string, unknown> = {
    formatVersion: 1,
    id,
    server: 'main',
    slot: begin,
    status,
    method: 'basebackup',
    pgVersion: IDENTITY.pgVersion,
    systemIdentifier: IDENTITY.systemIdentifier,
    timeline: 1,
    beginLsn: '0/2000028',
    endLsn: '0/2000100',
    beginWal: seg(1, 2),
    endWal: seg(1, 2),
    beginTime: begin,
    endTime: new Date(Date.parse(begin) + 10 * 60_000).toISOString(),
    sizes: { data: SEG, stored: SEG },
    checksums: {},
    compression: 'zstd',
    keep: 'none',
    ...(status === 'STARTED' ? { owner: { pid: 999_999, host: 'fixture-host', startedAt: begin } } : {}),
    ...(status === 'FAILED' ? { error: 'fixture failure' } : {}),
    ...o,
  };
  const drop = new Set<string>();
  if (status === 'STARTED') for (const k of [...COPY_KEYS, 'error', 'inUse']) drop.add(k);
  if (status === 'WAITING_FOR_WAL' || status === 'DONE') drop.add('owner').add('error');
  if (status !== 'DONE') drop.add('inUse');
  if (status === 'FAILED') for (const k of COPY_KEYS) if (k !== 'endTime' && !(k in o)) drop.add(k);
  const record = Object.fromEntries(Object.entries(all).filter(([k, v]) => v !== undefined && !drop.has(k)));
  return parseBackupRecord(JSON.stringify(record), { id, server: String(record.server) });
}

/** Segment name on a timeline for a segment number (16 MiB segments). */
export function seg(timeline: number, segno: number): string {
  return segmentNameFrom(timeline, segno, SEG);
}

/** Names for segno from..to inclusive. */
export function segs(timeline: number, from: number, to: number): string[] {
  const out: string[] = [];
  for (let s = from; s <= to; s++) out.push(seg(timeline, s));
  return out;
}

export function config(o: { schedule?: string; timezone?: string; retention?: Partial<RetentionPolicy>; maxLag?: number; name?: string } = {}): ServerConfig {
  return {
    name: o.name ?? 'main',
    backup: {
      method: 'basebackup',
      ...(o.schedule === undefined ? {} : { schedule: o.schedule }),
      timezone: o.timezone ?? 'UTC',
      compression: 'zstd',
      fastCheckpoint: true,
      archiveTimeoutSeconds: 600,
    },
    wal: { method: 'push', compression: 'zstd', ...(o.maxLag === undefined ? {} : { maxLagSeconds: o.maxLag }) },
    retention: { minRedundancy: 1, ...o.retention },
  };
}

export const IDENTITY: ServerIdentity = {
  systemIdentifier: '7312345678901234567',
  pgVersion: 150008,
  walSegmentSize: SEG,
  firstContact: '2026-10-01T00:00:00.000Z',
};

export function observedServer(o: Mutable<ObservedServer> = {}): ObservedServer {
  return withoutUndefined<ObservedServer>({
    name: 'main',
    identity: IDENTITY,
    backups: [],
    wal: { segments: [], histories: [], backupFiles: [] },
    incoming: [],
    quarantined: 0,
    ...o,
  });
}
