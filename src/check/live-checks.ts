/**
 * Checks that ask the live PostgreSQL server: reachable, privileges for backups, wal_level,
 * archive settings, whether archiving actually succeeds (pg_stat_archiver), identity against the
 * catalog, and whether the client programs pgbk spawns exist and can talk to this server.
 */

import type pg from 'pg';
import type { ServerConfig } from '../config/resolved.js';
import { toPgbkError } from '../errors.js';
import { findPgBinary, majorOf, programMajor } from '../pg/pg-bin.js';
import { probeServer, type ServerFacts } from '../pg/probe.js';
import { withPgClient } from '../pg/pg-session.js';
import { isRefusingArchiveCommand, REFUSING_ARCHIVE_COMMAND_HINT } from '../pg/archive-settings.js';
import { formatPgVersion } from '../plan/recoverable.js';
import type { ServerIdentity } from '../model/types.js';
import { fail, pass, type CheckResult } from './types.js';
import { plural } from '../lib/plural.js';

interface RoleRow {
  readonly rolsuper: boolean;
  readonly rolreplication: boolean;
  readonly can_switch: boolean;
}

interface ArchiverRow {
  readonly archived_count: string;
  readonly last_archived_wal: string | null;
  readonly last_archived_time: Date | null;
  readonly failed_count: string;
  readonly last_failed_wal: string | null;
  readonly last_failed_time: Date | null;
  /** Compared in SQL: the timestamps have microseconds, a JS Date only milliseconds. */
  readonly failing: boolean;
}

export interface LiveFacts {
  readonly facts: ServerFacts;
  readonly role: RoleRow;
  readonly archiver: ArchiverRow;
  /** Why a replication connection failed, or undefined when it worked. */
  readonly replicationError?: string;
  /** The server's data_directory, when the role may read it (superuser, pg_read_all_settings). */
  readonly dataDirectory?: string;
}

async function firstRow<R>(client: pg.Client, sql: string): Promise<R | undefined> {
  return (await client.query(sql)).rows[0] as R | undefined;
}

/** Everything the live checks need, in three short connections. Throws when the server is unreachable. */
export async function gatherLiveFacts(conninfo: string): Promise<LiveFacts> {
  const facts = await probeServer(conninfo);
  const { role, archiver, dataDirectory } = await withPgClient(conninfo, async (client) => {
    const role = await firstRow<RoleRow>(
      client,
      `SELECT r.rolsuper, r.rolreplication, has_function_privilege('pg_switch_wal()', 'execute') AS can_switch
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const archiver = await firstRow<ArchiverRow>(
      client,
      `SELECT archived_count::text, last_archived_wal, last_archived_time,
              failed_count::text, last_failed_wal, last_failed_time,
              (failed_count > 0 AND (last_archived_time IS NULL OR last_failed_time >= last_archived_time)) AS failing
         FROM pg_stat_archiver`,
    );
    // pg_settings hides superuser-only settings from other roles instead of failing.
    const dataDir = await firstRow<{ setting: string }>(client, "SELECT setting FROM pg_settings WHERE name = 'data_directory'");
    return {
      dataDirectory: dataDir?.setting,
      role: role ?? { rolsuper: false, rolreplication: false, can_switch: false },
      archiver: archiver ?? {
        archived_count: '0',
        last_archived_wal: null,
        last_archived_time: null,
        failed_count: '0',
        last_failed_wal: null,
        last_failed_time: null,
        failing: false,
      },
    };
  });
  let replicationError: string | undefined;
  try {
    // pg_basebackup and pg_receivewal need exactly this: a replication connection (pg_hba.conf
    // "replication" entry, REPLICATION attribute, a free wal sender).
    await withPgClient(conninfo, (client) => client.query('IDENTIFY_SYSTEM'), { replication: 'database' });
  } catch (err) {
    replicationError = toPgbkError(err).message;
  }
  return {
    facts,
    role,
    archiver,
    ...(replicationError === undefined ? {} : { replicationError }),
    ...(dataDirectory === undefined ? {} : { dataDirectory }),
  };
}

export function checkConnection(live: LiveFacts | Error): CheckResult {
  if (live instanceof Error) {
    return fail(
      'postgresql',
      `cannot connect: ${live.message} (the checks that need the server were skipped)`,
      'start PostgreSQL or fix `connection` in the configuration (host, port, user, dbname; password via PGPASSFILE)',
    );
  }
  const f = live.facts;
  const role = f.inRecovery ? 'standby' : 'primary';
  return pass('postgresql', `reachable, PostgreSQL ${formatPgVersion(f.pgVersion)} (${role}), system identifier ${f.systemIdentifier}`);
}

export function checkPrivileges(live: LiveFacts): CheckResult {
  const r = live.role;
  if (!r.rolsuper && !r.rolreplication) {
    return fail(
      'privileges',
      'the connecting role has neither SUPERUSER nor REPLICATION',
      'ALTER ROLE <the user in `connection`> REPLICATION; (pg_basebackup needs it)',
    );
  }
  if (live.replicationError !== undefined) {
    return fail(
      'privileges',
      `a replication connection is refused: ${live.replicationError}`,
      'add a "host replication <user> <address>" line to pg_hba.conf, reload, and check max_wal_senders > 0',
    );
  }
  const what = r.rolsuper ? 'superuser' : 'REPLICATION';
  // A standby cannot switch segments whatever the role may do: its backups end in a segment the
  // primary finishes (and archives) in its own time.
  const sw = live.facts.inRecovery
    ? ' (a standby: no pg_switch_wal(), so a backup here waits for the primary to finish its end segment)'
    : r.can_switch
      ? ', may run pg_switch_wal()'
      : ', may not run pg_switch_wal() (idle servers finish backups later)';
  return pass('privileges', `${what}, replication connection accepted${sw}`);
}

export function checkWalLevel(live: LiveFacts): CheckResult {
  const level = live.facts.walLevel;
  if (level === 'replica' || level === 'logical') return pass('wal_level', level);
  return fail('wal_level', `wal_level is ${level}: its WAL cannot rebuild a base backup`, 'set wal_level = replica in postgresql.conf and restart PostgreSQL');
}

export function checkArchiveMode(live: LiveFacts): CheckResult {
  const mode = live.facts.archiveMode;
  if (mode === 'on') {
    // Valid for a standby that is backed up while its primary archives into the catalog: say so, as
    // this server's own archiver stays idle until it is promoted.
    return pass('archive_mode', live.facts.inRecovery ? 'on (a standby archives nothing until promoted: its WAL reaches the catalog from the primary)' : mode);
  }
  if (mode === 'always') {
    return pass('archive_mode', live.facts.inRecovery ? 'always (standby archives its own WAL)' : 'always');
  }
  return fail('archive_mode', `archive_mode is ${mode}: PostgreSQL archives no WAL`, 'set archive_mode = on in postgresql.conf and restart PostgreSQL');
}

export function checkArchiveCommand(live: LiveFacts, server: ServerConfig): CheckResult {
  const f = live.facts;
  const suggested = `archive_command = 'pgbk wal-push ${server.name} %p'`;
  if (f.archiveLibrary !== '') {
    return fail(
      'archive_command',
      `archive_library is set (${f.archiveLibrary}), so PostgreSQL ignores archive_command`,
      `reset archive_library and set ${suggested}, then reload`,
    );
  }
  const cmd = f.archiveCommand.trim();
  if (cmd === '' || cmd === '(disabled)') {
    return fail('archive_command', 'archive_command is empty: WAL is not pushed to the catalog', `set ${suggested} and reload PostgreSQL`);
  }
  // What pgbk restore writes into a restored copy (pg/recovery-conf.ts): a promoted copy that now
  // stands in for the server archives nothing until that line goes.
  if (isRefusingArchiveCommand(cmd)) {
    return fail(
      'archive_command',
      `archive_command is '${cmd}': WAL is not pushed to the catalog (pgbk restore writes 'false' into a restored copy so that it does not archive)`,
      `${REFUSING_ARCHIVE_COMMAND_HINT}; otherwise set ${suggested} and reload PostgreSQL`,
    );
  }
  return pass('archive_command', cmd);
}

function iso(d: Date | null): string {
  return d === null ? 'never' : d.toISOString();
}

/**
 * Archiving works when the last attempt succeeded. Old failures that were followed by a success
 * are history (PostgreSQL retries the same segment), not a current problem.
 */
export function checkArchiver(live: LiveFacts): CheckResult {
  const a = live.archiver;
  const failed = Number(a.failed_count);
  if (a.failing) {
    return fail(
      'archiving',
      `archive_command is failing: ${plural(failed, 'failure')}, last for ${a.last_failed_wal ?? '?'} at ${iso(a.last_failed_time)}; last success ${a.last_archived_wal ?? 'none'} at ${iso(a.last_archived_time)}`,
      "read the archive_command error in PostgreSQL's log and fix it (permissions on incoming/, disk space, the command itself); WAL piles up in pg_wal until it succeeds",
    );
  }
  const hist = failed > 0 ? `; ${plural(failed, 'earlier failure')}, recovered` : '';
  if (live.facts.inRecovery && live.facts.archiveMode === 'on' && Number(a.archived_count) === 0) {
    // pg_stat_archiver of a standby with archive_mode on stays at zero: nothing to judge here (the
    // catalog's own checks see whether WAL arrives).
    return pass('archiving', 'none on this standby (archive_mode on): the primary archives the WAL');
  }
  return pass(
    'archiving',
    `${plural(Number(a.archived_count), 'segment')} archived, last ${a.last_archived_wal ?? 'none'} at ${iso(a.last_archived_time)}${hist}`,
  );
}

export function checkIdentity(live: LiveFacts, known: ServerIdentity | undefined): CheckResult {
  const sysid = live.facts.systemIdentifier;
  if (known === undefined) return pass('system identifier', `${sysid} (no catalog record yet: recorded at the first apply)`);
  if (known.systemIdentifier !== sysid) {
    return fail(
      'system identifier',
      `the server is cluster ${sysid}, the catalog belongs to cluster ${known.systemIdentifier}`,
      'the server was re-initialised or `connection` points at another cluster: fix `connection`, or give the new cluster a new server name (its old backups stay usable)',
    );
  }
  if (known.walSegmentSize !== live.facts.walSegmentSize) {
    return fail(
      'system identifier',
      `WAL segment size ${live.facts.walSegmentSize} differs from the catalog's ${known.walSegmentSize}`,
      'the cluster was re-initialised with another --wal-segsize: use a new server name',
    );
  }
  return pass('system identifier', `${sysid} matches the catalog`);
}

/** A client program exists and is new enough for this server (they refuse newer servers). */
export function checkProgram(name: string, serverVersion: number, env: NodeJS.ProcessEnv): CheckResult {
  try {
    const binary = findPgBinary(name, serverVersion, env);
    const major = programMajor(binary);
    const serverMajor = majorOf(serverVersion);
    if (serverVersion > 0 && major < serverMajor) {
      return fail(
        name,
        `${binary} is version ${major}, the server is ${serverMajor}`,
        `install the PostgreSQL ${serverMajor} client programs or set PGBK_PG_BINDIR`,
      );
    }
    return pass(name, `${binary} (version ${major})`);
  } catch (err) {
    const e = toPgbkError(err);
    return fail(name, e.message, e.hint ?? 'install the PostgreSQL client programs or set PGBK_PG_BINDIR');
  }
}
