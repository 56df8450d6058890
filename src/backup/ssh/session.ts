/**
 * The SQL side of an `ssh` backup: server facts, pg_backup_start and pg_backup_stop in ONE
 * session (PostgreSQL aborts a non-exclusive backup when its session ends, which is also how a
 * failed copy is abandoned). Two implementations: psql on the database host over the same SSH
 * connection (SSH-only mode, no idle PostgreSQL connection from the backup host), or a `pg` client
 * with TCP keepalives when `connection` is configured. Both run the same SQL, every value as text.
 */

import { PgbkError } from '../../errors.js';
import { unitBytes } from '../../pg/probe.js';

export interface SessionFacts {
  readonly pgVersion: number;
  readonly systemIdentifier: string;
  readonly walSegmentSize: number;
  readonly inRecovery: boolean;
  /** data_directory when the role may read it, else undefined. */
  readonly dataDirectory: string | undefined;
  readonly archiveMode: string;
  readonly archiveCommand: string;
  /** '' when unset, or before PostgreSQL 15 (no such setting). */
  readonly archiveLibrary: string;
}

export interface Tablespace {
  readonly oid: string;
  readonly location: string;
}

export interface StopResult {
  readonly lsn: string;
  readonly labelFile: string;
  /** tablespace_map contents; '' when there are no tablespaces. */
  readonly spcmapFile: string;
}

export interface BackupSession {
  readonly description: string;
  /** Run one statement; rows of text fields (NULL → ''). */
  query(sql: string): Promise<string[][]>;
  close(): Promise<void>;
}

export function sqlLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

const FACTS_SQL = `SELECT current_setting('server_version_num'), s.system_identifier::text,
  (SELECT setting || ' ' || coalesce(unit, '') FROM pg_settings WHERE name = 'wal_segment_size'),
  pg_is_in_recovery()::text,
  coalesce(CASE WHEN pg_has_role('pg_read_all_settings', 'member') THEN current_setting('data_directory') END, ''),
  current_setting('archive_mode'), current_setting('archive_command'), coalesce(current_setting('archive_library', true), '')
  FROM pg_control_system() s`;

function firstRow(rows: string[][], what: string): string[] {
  const row = rows[0];
  if (row === undefined) throw new PgbkError('PG', `${what}: no row returned`);
  return row;
}

export async function readFacts(session: BackupSession): Promise<SessionFacts> {
  const [version, sysid, seg, recovery, datadir, archiveMode, archiveCommand, archiveLibrary] = firstRow(await session.query(FACTS_SQL), 'server facts');
  const [segSetting, segUnit] = (seg ?? '').split(' ');
  const walSegmentSize = Number(segSetting) * unitBytes(segUnit === '' || segUnit === undefined ? null : segUnit);
  if (!Number.isSafeInteger(walSegmentSize) || walSegmentSize <= 0 || !/^\d+$/.test(sysid ?? '')) {
    throw new PgbkError('PG', `${session.description}: unexpected server facts (${[version, sysid, seg].join(', ')})`);
  }
  return {
    pgVersion: Number(version),
    systemIdentifier: sysid ?? '',
    walSegmentSize,
    inRecovery: recovery === 'true',
    dataDirectory: datadir === '' ? undefined : datadir,
    archiveMode: archiveMode ?? '',
    archiveCommand: archiveCommand ?? '',
    archiveLibrary: archiveLibrary ?? '',
  };
}

export async function listTablespaces(session: BackupSession): Promise<Tablespace[]> {
  const rows = await session.query(
    "SELECT oid::text, pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid",
  );
  return rows.map(([oid, location]) => ({ oid: oid ?? '', location: location ?? '' }));
}

/** pg_backup_start (PG 15+) or pg_start_backup(label, fast, false) before it; returns the start LSN. */
export async function backupStart(session: BackupSession, pgVersion: number, label: string, fast: boolean): Promise<string> {
  const sql =
    pgVersion >= 150000 ? `SELECT pg_backup_start(${sqlLiteral(label)}, ${fast})::text` : `SELECT pg_start_backup(${sqlLiteral(label)}, ${fast}, false)::text`;
  return firstRow(await session.query(sql), 'pg_backup_start')[0] ?? '';
}

function fromHex(hex: string | undefined): string {
  return Buffer.from(hex ?? '', 'hex').toString('utf8');
}

/**
 * pg_backup_stop(wait_for_archive => false): PostgreSQL still switches to a new segment, so the end
 * segment gets archived; waitForArchived then polls for it. PostgreSQL's own wait sleeps a whole
 * second between checks, which was a third of a small incremental backup's time.
 */
export async function backupStop(session: BackupSession, pgVersion: number): Promise<StopResult> {
  const fn = pgVersion >= 150000 ? 'pg_backup_stop(false)' : 'pg_stop_backup(false, false)';
  // hex: the label file spans lines, and psql's unaligned output is line-based.
  const row = firstRow(
    await session.query(
      `SELECT lsn::text, encode(convert_to(labelfile, 'UTF8'), 'hex'), encode(convert_to(coalesce(spcmapfile, ''), 'UTF8'), 'hex') FROM ${fn}`,
    ),
    'pg_backup_stop',
  );
  return { lsn: row[0] ?? '', labelFile: fromHex(row[1]), spcmapFile: fromHex(row[2]) };
}

/**
 * Between two looks at pg_stat_archiver: the archiver copies the end segment within tens of ms
 * after the switch, and each look is one short query on the open session.
 */
const ARCHIVED_POLL_MS = 10;

/**
 * Wait (polling every ARCHIVED_POLL_MS, at most timeoutMs) until the server's archiver has archived segment
 * `walName` — where PostgreSQL's wait_for_archive would have waited (archive_mode on, or always on
 * a standby). Returns false on timeout: the backup then stays WAITING_FOR_WAL until its WAL arrives.
 */
export async function waitForArchived(session: BackupSession, walName: string, timeoutMs: number): Promise<boolean> {
  const [mode, recovery] = firstRow(await session.query("SELECT current_setting('archive_mode'), pg_is_in_recovery()::text"), 'archive_mode');
  if (mode === 'off' || (recovery === 'true' && mode !== 'always')) return true;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [last] = firstRow(await session.query("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"), 'pg_stat_archiver');
    // Same timeline: names order like the segments; a .history or .partial name sorts after its segment.
    if (last !== undefined && last.slice(0, 8) === walName.slice(0, 8) && last.slice(0, 24) >= walName) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, ARCHIVED_POLL_MS));
  }
}

/** "START TIMELINE: 1" from a backup_label. */
export function labelTimeline(labelFile: string): number {
  const m = /^START TIMELINE: (\d+)$/m.exec(labelFile);
  if (m?.[1] === undefined) throw new PgbkError('PG', 'backup_label from pg_backup_stop has no START TIMELINE line');
  return Number(m[1]);
}

/** "START WAL LOCATION: 0/2000028 (file …)" from a backup_label. */
export function labelStartLsn(labelFile: string): string {
  const m = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(labelFile);
  if (m?.[1] === undefined) throw new PgbkError('PG', 'backup_label from pg_backup_stop has no START WAL LOCATION line');
  return m[1];
}
