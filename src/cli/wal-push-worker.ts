/**
 * `pgbk wal-push-worker [SSH flags] --pgdata DIR [--idle-exit SECONDS] SERVER` (hidden): started
 * by the wal-push client when no worker answers on its socket; the worker itself is
 * wal-push/worker.ts. Its stderr is the worker's log file, one timestamped line per event.
 */

import { PgbkError } from '../errors.js';
import { optionsFrom } from '../wal-push/target.js';
import { runPushWorker } from '../wal-push/worker.js';
import { WAL_PUSH_WORKER_OPTIONS } from './commands.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';
import { reportError } from './report-error.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values, positionals } = parseCommand('wal-push-worker', args, WAL_PUSH_WORKER_OPTIONS);
    debug = values.debug === true;
    const serverName = requirePositional('wal-push-worker', positionals, 0, 'SERVER');
    const opts = optionsFrom(values, serverName);
    const pgdata = values.pgdata;
    if (pgdata === undefined) throw new PgbkError('USAGE', 'wal-push-worker: --pgdata is required');
    const idleMs = Number(values['idle-exit'] ?? '120') * 1000;
    const log = (s: string): void => void io.stderr.write(`${new Date().toISOString()} pgbk wal-push-worker[${process.pid}] ${s}\n`);
    return await runPushWorker({ opts, pgdata, idleMs, log });
  } catch (err) {
    return reportError(err, io, debug);
  }
}
