/**
 * `check` proves WAL reaches *this* catalog end to end (as pgBackRest's check does): it names the
 * server and catalog a pgbk archive_command pushes to, then closes the current segment with
 * pg_switch_wal() and waits, bounded, until that segment is in this server's catalog.
 *
 * What counts as arrived: the segment in wal/ (archived, any compression) or complete in incoming/
 * (full segment size, final name). incoming/ is where archive_command's job ends: the next apply
 * or the running daemon archives it from there, and apply checks its identity then.
 */

import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { incomingDir, isArchived } from '../catalog/index.js';
import { localRootOf } from '../catalog/local-spool.js';
import { locate, repositoryKindOf } from '../catalog/open.js';
import type { ServerConfig } from '../config/resolved.js';
import { toPgbkError } from '../errors.js';
import { withPgClient } from '../pg/pg-session.js';
import { type ArchiveTarget, parseArchiveTarget } from './archive-target.js';
import { fail, pass, type CheckResult } from './types.js';

async function realOrResolved(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

/** The catalog a pgbk configuration file names, or the reason it could not be read. */
async function catalogOfConfig(file: string): Promise<string | Error> {
  try {
    const { loadConfig } = await import('../config/load.js');
    return (await loadConfig({ configPath: file, cwd: path.dirname(file), env: {} })).catalog;
  } catch (err) {
    return toPgbkError(err);
  }
}

/**
 * When archive_command is `pgbk … wal-push … SERVER %p`: FAILED if it names another server, or a
 * catalog (through --to or --config) that is not this one, by real path. undefined when the
 * command is not pgbk's (a cp or rsync into incoming/): the arrival check then speaks for it.
 */
export async function checkArchiveTarget(
  cmd: string,
  server: ServerConfig,
  catalog: string,
  configPath: string,
  dataDirectory?: string,
): Promise<CheckResult | undefined> {
  const t = parseArchiveTarget(cmd.trim());
  if (t === undefined) return undefined;
  const suggested = `archive_command = 'pgbk wal-push ${server.name} %p'`;
  if (t.server !== server.name) {
    return fail(
      'archive_command',
      `archive_command pushes WAL to server "${t.server}", not "${server.name}": ${cmd}`,
      `set ${suggested} (the server name in this configuration) and reload PostgreSQL`,
    );
  }
  const ours = await realOrResolved(catalog);
  if (t.sshCatalog !== undefined) {
    const theirs = await realOrResolved(t.sshCatalog);
    if (theirs !== ours) {
      return fail(
        'archive_command',
        `archive_command pushes WAL to catalog ${t.sshCatalog} (--to), this configuration's catalog is ${catalog}: ${cmd}`,
        'make --to name this catalog (ssh://USER@HOST/' + catalog.replace(/^\//, '') + ') and reload PostgreSQL',
      );
    }
  } else if (t.config !== undefined && path.isAbsolute(t.config)) {
    // A relative --config is resolved in the data directory, which check does not know: not compared.
    if ((await realOrResolved(t.config)) !== (await realOrResolved(configPath))) {
      const theirs = await catalogOfConfig(t.config);
      if (theirs instanceof Error) {
        return fail(
          'archive_command',
          `archive_command uses configuration ${t.config}, which cannot be read here: ${theirs.message}`,
          `use --config ${configPath} in archive_command, or make that file readable`,
        );
      }
      if ((await realOrResolved(theirs)) !== ours) {
        return fail(
          'archive_command',
          `archive_command uses configuration ${t.config}, whose catalog is ${theirs}, not ${catalog}: ${cmd}`,
          `use --config ${configPath} in archive_command and reload PostgreSQL`,
        );
      }
    }
  }
  const misnamed = await fastPathForAnotherDirectory(t, server.name, dataDirectory);
  if (misnamed !== undefined) return misnamed;
  return pass('archive_command', `${cmd} (server ${server.name}, this catalog)`);
}

/**
 * The local fast path names its worker by (config, server, data directory): printed for another
 * directory (`--print-archive-command` run elsewhere, or a copied setup), its socket is never the
 * one the client starts, so the marker loop waits out its seconds and every segment starts the
 * Node client: archiving works, slowly, until a busy server's archiver falls behind. Compared only
 * when the data directory is known and on this host (over SSH the key has other parts).
 */
async function fastPathForAnotherDirectory(t: ArchiveTarget, server: string, dataDirectory: string | undefined): Promise<CheckResult | undefined> {
  if (t.fastPathSocket === undefined || t.sshCatalog !== undefined || t.config === undefined || dataDirectory === undefined) return undefined;
  const pgdata = await realpath(dataDirectory).catch(() => undefined);
  if (pgdata === undefined) return undefined;
  const { localWorkerKey } = await import('../wal-push/target.js');
  const expected = `walpush-${localWorkerKey(t.config, server, pgdata)}.sock`;
  if (path.basename(t.fastPathSocket) === expected) return undefined;
  return fail(
    'archive_command',
    `archive_command's fast path was printed for another data directory: it waits for worker ${path.basename(t.fastPathSocket)}, but the worker for ${pgdata} is ${expected}, so every segment starts the Node client (slow; a busy server's archiver falls behind)`,
    `print it again for this data directory and reload PostgreSQL: pgbk --config ${t.config} wal-push --print-archive-command --pgdata ${pgdata} ${server}`,
  );
}

async function isFile(p: string, size?: number): Promise<boolean> {
  try {
    const st = await stat(p);
    return st.isFile() && (size === undefined || st.size === size);
  } catch {
    return false;
  }
}

/** Where the segment is now: 'wal' (archived), 'incoming' (complete, waiting for apply), or undefined. */
export async function findArrivedSegment(catalog: string, serverName: string, segment: string, segSize: number): Promise<'wal' | 'incoming' | undefined> {
  if (await isArchived(catalog, serverName, segment)) return 'wal';
  // An object-storage catalog without a spool has no incoming/: WAL arrives through wal-push only.
  if (localRootOf(catalog) !== undefined && (await isFile(path.join(incomingDir(catalog, serverName), segment), segSize))) return 'incoming';
  return undefined;
}

/** Close the current WAL segment; returns the name of the segment that must now be archived. */
async function switchSegment(conninfo: string, superuser: boolean): Promise<string> {
  return withPgClient(conninfo, async (client) => {
    // A restore point writes a WAL record, so the switch closes a segment even on an idle server
    // (pg_switch_wal on an empty segment does nothing and names the previous one, already sent).
    if (superuser) await client.query("SELECT pg_create_restore_point('pgbk check')");
    const res = await client.query('SELECT pg_walfile_name(pg_switch_wal()) AS name');
    return String((res.rows[0] as { name: string }).name);
  });
}

/**
 * What to look at when the switched segment never arrived. An object store is written by
 * archive_command itself (wal-push): the usual cause is that it runs as PostgreSQL's OS user with
 * PostgreSQL's environment, where the credentials this shell has (AWS_*, ~/.aws) are missing.
 */
export function arrivalHint(catalog: string): string {
  const common = "read PostgreSQL's log and pg_stat_archiver; raise --wal-timeout if archiving is just slow";
  if (repositoryKindOf(catalog) === 'posix') return `archive_command must deliver WAL to this catalog: compare it with this server's catalog path, ${common}`;
  return (
    "archive_command must be pgbk wal-push with this configuration (wal-push --print-archive-command prints it), or copy into s3.spool's incoming/; pgbk wal-push runs as PostgreSQL's OS user with PostgreSQL's environment, " +
    `so the S3 credentials (AWS_* variables or that user's ~/.aws) and s3.tls.caFile must work for that user, not only for this shell (pgbk's error is in PostgreSQL's log); ${common}`
  );
}

export interface WalArrivalOptions {
  readonly catalog: string;
  readonly timeoutMs: number;
  readonly superuser: boolean;
  readonly segSize: number;
  /** Poll interval; tests may shorten it. */
  readonly pollMs?: number;
}

export async function checkWalArrival(server: ServerConfig, conninfo: string, opts: WalArrivalOptions): Promise<CheckResult> {
  const name = 'wal arrival';
  let segment: string;
  try {
    segment = await switchSegment(conninfo, opts.superuser);
  } catch (err) {
    return fail(name, `pg_switch_wal() failed: ${toPgbkError(err).message}`, 'GRANT EXECUTE ON FUNCTION pg_switch_wal() TO the user in `connection`');
  }
  const started = Date.now();
  const deadline = started + opts.timeoutMs;
  for (;;) {
    const where = await findArrivedSegment(opts.catalog, server.name, segment, opts.segSize);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (where === 'wal') return pass(name, `segment ${segment} (pg_switch_wal) is archived in this catalog (${secs}s)`);
    if (where === 'incoming') {
      return pass(name, `segment ${segment} (pg_switch_wal) arrived in incoming/ (${secs}s); apply or the daemon archives it`);
    }
    if (Date.now() >= deadline) {
      return fail(
        name,
        `segment ${segment} (pg_switch_wal) did not arrive in ${locate(opts.catalog, server.name)} (${localRootOf(opts.catalog) === undefined ? 'wal/' : 'wal/ or incoming/'}) within ${Math.round(opts.timeoutMs / 1000)}s`,
        arrivalHint(opts.catalog),
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(opts.pollMs ?? 200, Math.max(1, deadline - Date.now()))));
  }
}
