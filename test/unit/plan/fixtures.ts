/**
 * Builders for planner tests: backups, server configs and WAL names with sensible defaults, so each
 * table row states only what it is about.
 */

import type { ServerConfig, RetentionPolicy } from '../../../src/config/resolved.js';
import { segmentNameFrom } from '../../../src/pg/wal-name.js';
import type { BackupRecord, ObservedServer, ServerIdentity } from '../../../src/model/types.js';

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

/** A DONE backup that began at its id and ended 10 minutes later, unless overridden. */
export function backup(id: string, o: Mutable<BackupRecord> = {}): BackupRecord {
  const begin = isoOfId(id);
  return withoutUndefined<BackupRecord>({
    formatVersion: 1,
    id,
    server: 'main',
    slot: begin,
    status: 'DONE',
    method: 'basebackup',
    timeline: 1,
    beginTime: begin,
    endTime: new Date(Date.parse(begin) + 10 * 60_000).toISOString(),
    compression: 'zstd',
    keep: 'none',
    ...o,
  });
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
