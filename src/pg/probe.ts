/**
 * What pgbk needs to know about a live server before trusting WAL or backups from it: its identity
 * (system identifier, version, WAL segment size — fixed at first contact in server.json), where its
 * WAL currently is, and whether archiving is configured at all.
 */

import type pg from 'pg';
import { PgbkError } from '../errors.js';
import { withPgClient } from './pg-session.js';

export interface ServerFacts {
  readonly systemIdentifier: string; // decimal uint64, as text (exceeds Number precision)
  readonly pgVersion: number; // server_version_num, e.g. 150008
  readonly walSegmentSize: number; // bytes
  /** Timeline WAL is written on (primary) or replayed on (standby). */
  readonly timeline: number;
  /** pg_current_wal_lsn() on a primary, pg_last_wal_replay_lsn() on a standby ("X/Y"). */
  readonly currentLsn: string | null;
  readonly inRecovery: boolean;
  readonly walLevel: string;
  readonly archiveMode: string;
  readonly archiveCommand: string;
  /** PG 15+: when set, archive_command is ignored by the server. Empty when unset or unsupported. */
  readonly archiveLibrary: string;
}

/** Multiplier for a pg_settings unit such as "B", "kB", "8kB", "MB" (PG 10 reported "8kB"). */
export function unitBytes(unit: string | null): number {
  if (unit === null || unit === '' || unit === 'B') return 1;
  const m = /^(\d*)(B|kB|MB|GB|TB)$/.exec(unit);
  if (m === null) throw new PgbkError('PG', `unexpected pg_settings unit "${unit}" for wal_segment_size`);
  const factor = m[1] === undefined || m[1] === '' ? 1 : Number(m[1]);
  const scale: Readonly<Record<string, number>> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
  return factor * (scale[m[2] as string] ?? 1);
}

interface SettingsRow {
  readonly version: string;
  readonly seg_setting: string;
  readonly seg_unit: string | null;
  readonly wal_level: string;
  readonly archive_mode: string;
  readonly archive_command: string;
  readonly archive_library: string | null;
  readonly in_recovery: boolean;
}

const SETTINGS_SQL = `
SELECT current_setting('server_version_num') AS version,
       s.setting AS seg_setting, s.unit AS seg_unit,
       current_setting('wal_level') AS wal_level,
       current_setting('archive_mode') AS archive_mode,
       current_setting('archive_command') AS archive_command,
       current_setting('archive_library', true) AS archive_library,
       pg_is_in_recovery() AS in_recovery
  FROM pg_settings s WHERE s.name = 'wal_segment_size'`;

async function one<R>(client: pg.Client, sql: string): Promise<R> {
  const res = await client.query(sql);
  const row = res.rows[0] as R | undefined;
  if (row === undefined) throw new PgbkError('PG', `no row from: ${sql.trim().split('\n')[0] ?? sql}`);
  return row;
}

/** A segment file name's first 8 hex digits are its timeline. */
function timelineOfWalName(name: string): number {
  if (!/^[0-9A-F]{24}$/.test(name)) throw new PgbkError('PG', `unexpected WAL file name "${name}"`);
  return parseInt(name.slice(0, 8), 16);
}

/**
 * pg_control_system() may be revoked from non-superusers; IDENTIFY_SYSTEM needs only the
 * REPLICATION attribute that a backup role has anyway.
 */
async function identifySystem(conninfo: string): Promise<{ systemIdentifier: string; timeline: number }> {
  return withPgClient(
    conninfo,
    async (client) => {
      const row = await one<{ systemid: string; timeline: number | string }>(client, 'IDENTIFY_SYSTEM');
      return { systemIdentifier: String(row.systemid), timeline: Number(row.timeline) };
    },
    { replication: 'database' },
  );
}

function isPermissionDenied(err: unknown): boolean {
  const cause = err instanceof PgbkError ? err.cause : err;
  return typeof cause === 'object' && cause !== null && (cause as { code?: unknown }).code === '42501';
}

/** Ask the server for its identity and WAL position. Errors: PgbkError NETWORK (retryable) or PG. */
export async function probeServer(conninfo: string): Promise<ServerFacts> {
  const facts = await withPgClient(conninfo, async (client) => {
    const s = await one<SettingsRow>(client, SETTINGS_SQL);
    let currentLsn: string | null;
    let timeline: number | undefined;
    if (s.in_recovery) {
      currentLsn = (await one<{ lsn: string | null }>(client, 'SELECT pg_last_wal_replay_lsn()::text AS lsn')).lsn;
    } else {
      const w = await one<{ lsn: string; walfile: string }>(
        client,
        'SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS walfile',
      );
      currentLsn = w.lsn;
      timeline = timelineOfWalName(w.walfile);
    }
    let systemIdentifier: string | undefined;
    try {
      const c = await one<{ sysid: string; tli: number }>(
        client,
        'SELECT s.system_identifier::text AS sysid, c.timeline_id AS tli FROM pg_control_system() s, pg_control_checkpoint() c',
      );
      systemIdentifier = c.sysid;
      timeline ??= c.tli; // a standby: the timeline of its latest restartpoint
    } catch (err) {
      if (!isPermissionDenied(err)) throw err;
    }
    return { s, currentLsn, timeline, systemIdentifier };
  });

  let { timeline, systemIdentifier } = facts;
  if (systemIdentifier === undefined || timeline === undefined) {
    const id = await identifySystem(conninfo);
    systemIdentifier = id.systemIdentifier;
    timeline ??= id.timeline;
  }
  const s = facts.s;
  const walSegmentSize = Number(s.seg_setting) * unitBytes(s.seg_unit);
  if (!Number.isSafeInteger(walSegmentSize) || walSegmentSize <= 0) {
    throw new PgbkError('PG', `unexpected wal_segment_size "${s.seg_setting}" (${s.seg_unit ?? 'no unit'})`);
  }
  return {
    systemIdentifier,
    pgVersion: Number(s.version),
    walSegmentSize,
    timeline,
    currentLsn: facts.currentLsn,
    inRecovery: s.in_recovery,
    walLevel: s.wal_level,
    archiveMode: s.archive_mode,
    archiveCommand: s.archive_command,
    archiveLibrary: s.archive_library ?? '',
  };
}

/** Close the current segment so it can be archived now (an idle primary may otherwise wait). */
export async function switchWal(conninfo: string): Promise<string> {
  return withPgClient(conninfo, async (client) => {
    const row = await one<{ lsn: string }>(client, 'SELECT pg_switch_wal()::text AS lsn');
    return row.lsn;
  });
}
