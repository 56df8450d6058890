/**
 * `pgbk wal-fetch --from ssh://USER@HOST[:PORT]/CATALOG [--identity F] [--known-hosts F]
 * [--remote-pgbk CMD] [--prefetch N] SERVER %f %p`: restore_command on the database host for an
 * archive on the backup host (wal-fetch/client.ts asks the worker).
 *
 * Exit status, as for local wal-fetch (wal-fetch.ts): 0 = %p holds the verified file;
 * 1 = the archive answered "not there"; 255 = anything else (cannot reach or read the archive,
 * corrupt file, bad arguments): PostgreSQL then stops recovery instead of ending it early.
 */

import { formatError, PgbkError, toPgbkError } from '../errors.js';
import { FETCHABLE_RE, fetchThroughWorker } from '../wal-fetch/client.js';
import { FETCH_FLAGS, fetchOptionsFrom } from '../wal-fetch/source.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';
import { EXIT_FATAL, EXIT_NOT_FOUND } from './report-error.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values, positionals } = parseCommand('wal-fetch', args, FETCH_FLAGS);
    debug = values.debug === true;
    const server = requirePositional('wal-fetch', positionals, 0, 'SERVER');
    const name = requirePositional('wal-fetch', positionals, 1, 'WALNAME (%f)');
    const dest = requirePositional('wal-fetch', positionals, 2, 'DEST (%p)');
    if (positionals.length > 3) throw new PgbkError('USAGE', `wal-fetch: unexpected argument "${positionals[3]}"`);
    if (!FETCHABLE_RE.test(name)) throw new PgbkError('USAGE', `wal-fetch: "${name}" is not a WAL segment, .history, .partial or .backup name`, { server });
    const opts = fetchOptionsFrom(values, server, io.cwd);
    const reply = await fetchThroughWorker(opts, name, dest, io.cwd);
    if (reply.status === 'ok') {
      if (/^[0-9A-F]{24}$/.test(name)) io.stderr.write(`pgbk wal-fetch: ${name} served over SSH from the archive (not spooled)\n`);
      return 0;
    }
    if (reply.status === 'absent') {
      if (debug) io.stderr.write(`pgbk wal-fetch: ${name} is not in the archive on ${opts.source.host}\n`);
      return EXIT_NOT_FOUND;
    }
    throw new PgbkError('WAL', reply.error, { server });
  } catch (err) {
    const e = toPgbkError(err);
    io.stderr.write(`pgbk wal-fetch: FATAL: ${formatError(e)}\n  recovery must stop here rather than end early (exit ${EXIT_FATAL})\n`);
    if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return EXIT_FATAL;
  }
}
