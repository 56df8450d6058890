/**
 * `pgbk wal-fetch-worker [SSH flags] --pgdata DIR [--idle-exit SECONDS] SERVER` (hidden): started
 * by the wal-fetch client when no worker answers on its socket; the worker itself is
 * wal-fetch/worker.ts. Its stderr is the worker's log file, one timestamped line per event.
 */

import { PgbkError } from '../errors.js';
import { fetchOptionsFrom } from '../wal-fetch/source.js';
import { runFetchWorker } from '../wal-fetch/worker.js';
import { WAL_FETCH_WORKER_OPTIONS } from './commands.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';
import { reportError } from './report-error.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values, positionals } = parseCommand('wal-fetch-worker', args, WAL_FETCH_WORKER_OPTIONS);
    debug = values.debug === true;
    const serverName = requirePositional('wal-fetch-worker', positionals, 0, 'SERVER');
    const opts = fetchOptionsFrom(values, serverName, io.cwd);
    const pgdata = values.pgdata;
    if (pgdata === undefined) throw new PgbkError('USAGE', 'wal-fetch-worker: --pgdata is required');
    const idleMs = Number(values['idle-exit'] ?? '60') * 1000;
    const log = (s: string): void => void io.stderr.write(`${new Date().toISOString()} pgbk wal-fetch-worker[${process.pid}] ${s}\n`);
    return await runFetchWorker({ opts, pgdata, idleMs, log });
  } catch (err) {
    return reportError(err, io, debug);
  }
}
