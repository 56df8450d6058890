/**
 * `pgbk wal-fetch [--config F] SERVER WALNAME DEST [--spool DIR] [--prefetch N]` — PostgreSQL's
 * restore_command (`... wal-fetch --config F SERVER %f %p`), written by `pgbk restore`.
 *
 * Exit status is what PostgreSQL acts on (PostgreSQL 15, RestoreArchivedFile):
 * - 0: DEST holds the file, verified;
 * - 1: the file is not in the archive: PostgreSQL takes that as the end of archived WAL (or tries
 *   another timeline) — so 1 is used for nothing else;
 * - 255 (any status above 125 counts as "command not found/killed"): the archive cannot be read,
 *   the configuration is broken, the file is corrupt, the arguments are wrong. PostgreSQL then
 *   stops recovery with a FATAL error instead of ending it early and promoting at the wrong point.
 *   The reason goes to stderr, i.e. PostgreSQL's log.
 *
 * `pgbk wal-fetch --from ssh://USER@HOST[:PORT]/CATALOG … SERVER %f %p` reads an archive on another
 * host through a long-lived SSH worker (wal-fetch-remote.ts), same exit statuses.
 *
 * `pgbk wal-fetch --clean-spool [--spool DIR]` is the recovery_end_command: it stops the prefetch
 * worker and removes the spool (default ./.pgbk-spool; PostgreSQL runs it in the data directory).
 *
 * restore_command tries a shell fast path first (src/restore/fast-path.ts): this Node command runs
 * only for segments the prefetch worker has not spooled, and for .history files and the end of
 * WAL. Each segment it serves is logged on stderr (PostgreSQL's log), so a recovery that keeps
 * missing the fast path is visible. Imports only what parsing needs; the rest loads on demand.
 */
import path from 'node:path';
import { PgbkError } from '../errors.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';
import { WAL_FETCH_LOCAL_OPTIONS } from './commands.js';
import { diag } from './diag.js';

// The exit statuses (1 not found, 255 fatal) are in report-error.ts: commands.ts gives wal-fetch
// the restore-command exit policy, applied by the one catch in dispatch.ts.

/** Segments kept spooled ahead of PostgreSQL (16 MiB each by default). */
const DEFAULT_PREFETCH = 8;

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  if (args.some((a) => a === '--from' || a.startsWith('--from='))) {
    // The archive is on another host: the tiny SSH-worker client (wal-fetch-remote.ts).
    return (await import('./wal-fetch-remote.js')).main(args, io);
  }
  const { values, positionals } = parseCommand('wal-fetch', args, WAL_FETCH_LOCAL_OPTIONS);
  const { SPOOL_DIR_NAME, removeSpool } = await import('../wal-fetch/spool.js');
  if (values['clean-spool'] === true) {
    await removeSpool(path.resolve(io.cwd, values.spool ?? SPOOL_DIR_NAME));
    return 0;
  }
  const server = requirePositional('wal-fetch', positionals, 0, 'SERVER');
  const name = requirePositional('wal-fetch', positionals, 1, 'WALNAME (%f)');
  const dest = requirePositional('wal-fetch', positionals, 2, 'DEST (%p)');
  if (positionals.length > 3) throw new PgbkError('USAGE', `wal-fetch: unexpected argument "${positionals[3]}"`);
  let prefetch = DEFAULT_PREFETCH;
  if (values.prefetch !== undefined) {
    if (!/^\d{1,3}$/.test(values.prefetch)) throw new PgbkError('USAGE', `wal-fetch: --prefetch ${values.prefetch}: expected a number 0-999`);
    prefetch = Number(values.prefetch);
  }
  const { fetchWal } = await import('../wal-fetch/local-fetch.js');
  const source = await fetchWal({
    server,
    name,
    dest,
    cwd: io.cwd,
    env: io.env,
    prefetch,
    ...(values.config === undefined ? {} : { configPath: values.config }),
    ...(values.spool === undefined ? {} : { spool: values.spool }),
  });
  if (source === 'streaming-partial') diag(io, 'info', `pgbk wal-fetch: ${name} served from pg_receivewal's current .partial (the newest streamed WAL)`);
  else if (/^[0-9A-F]{24}$/.test(name)) diag(io, 'info', `pgbk wal-fetch: ${name} served from the archive (not spooled)`);
  return 0;
}
