/**
 * `pgbk wal-push-worker (--to ssh://… [SSH flags] | --config FILE) --pgdata DIR [--idle-exit
 * SECONDS] SERVER` (hidden): started by the wal-push client when no worker answers on its socket;
 * the worker itself is wal-push/worker.ts, its sink ssh-sink.ts (with --to) or local-sink.ts (the
 * catalog of FILE). Its stderr is the worker's log file, one timestamped line per event.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { localWorkerKey, optionsFrom, workerKey } from '../wal-push/target.js';
import { runPushWorker } from '../wal-push/worker.js';
import { WAL_PUSH_WORKER_OPTIONS } from './commands.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, requirePositional } from './options.js';
import { reportError } from './report-error.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values, positionals } = parseCommand('wal-push-worker', args, WAL_PUSH_WORKER_OPTIONS);
    debug = values.debug === true;
    const serverName = requirePositional('wal-push-worker', positionals, 0, 'SERVER');
    const pgdata = values.pgdata;
    if (pgdata === undefined) throw new PgbkError('USAGE', 'wal-push-worker: --pgdata is required');
    const idleMs = Number(values['idle-exit'] ?? '120') * 1000;
    const log = (s: string): void => void io.stderr.write(`${new Date().toISOString()} pgbk wal-push-worker[${process.pid}] ${s}\n`);
    if (values.to !== undefined) {
      const opts = optionsFrom(values, serverName);
      const { openSshSink } = await import('../wal-push/ssh-sink.js');
      return await runPushWorker({ key: workerKey(opts, pgdata), pgdata, idleMs, log, server: serverName, open: (onDead) => openSshSink(opts, onDead) });
    }
    // The local catalog: the worker reads the configuration (the client only knows its path) and,
    // like wal-push itself, runs as the catalog's owner or refuses.
    if (values.config === undefined) throw new PgbkError('USAGE', 'wal-push-worker: --to or --config is required');
    const config = path.resolve(io.cwd, values.config);
    const desired = await loadDesired(config, { ...io, catalogUse: { command: 'wal-push-worker', access: 'write' } }, { s3: true });
    const server = desired.servers.find((s) => s.name === serverName);
    if (server === undefined) throw new PgbkError('USAGE', `wal-push-worker: unknown server "${serverName}"`, { path: config });
    const { openLocalSink } = await import('../wal-push/local-sink.js');
    return await runPushWorker({
      key: localWorkerKey(config, serverName, pgdata),
      pgdata,
      idleMs,
      log,
      server: serverName,
      open: () => openLocalSink(desired.catalog, server),
    });
  } catch (err) {
    return reportError(err, io, debug);
  }
}
