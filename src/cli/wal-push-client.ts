/**
 * The per-segment archive_command that goes through a long-lived worker (wal-push/client.ts does
 * the work), for a catalog on another host or on this one:
 *  - `pgbk wal-push --to ssh://USER@HOST[:PORT]/CATALOG [--identity F] [--known-hosts F]
 *    [--remote-pgbk CMD] [--compression C] SERVER %p`;
 *  - `pgbk wal-push --config FILE --worker SERVER %p`: the local catalog, the fallback that
 *    `pgbk wal-push --print-archive-command` writes (cli/wal-push.ts prints it: it reads the
 *    configuration, which this client never loads).
 * Exit 0 only when the worker reports the file durable in the archive; 1 with the reason on
 * stderr otherwise. `--to … --print-archive-command [--pgdata DIR] [--wait-seconds N]` prints the
 * recommended archive_command instead: the shell fast path of wal-push/fast-path.ts in front of
 * this client. Kept as light as the client: it runs once per WAL segment.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { fastPathCommand, pushThroughWorker } from '../wal-push/client.js';
import { localRoute, optionArgs, optionsFrom, sshRoute, type WorkerRoute } from '../wal-push/target.js';
import { WAL_PUSH_OPTIONS } from './commands.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseCommand('wal-push', args, WAL_PUSH_OPTIONS);
    const server = requirePositional('wal-push', positionals, 0, 'SERVER');
    let route: WorkerRoute;
    if (values.to === undefined) {
      // --worker: the local catalog's worker, named by the configuration file's path.
      if (values.config === undefined) throw new PgbkError('USAGE', 'wal-push --worker: --config FILE is required (the worker is named by it)');
      if (values['print-archive-command'] === true) throw new PgbkError('USAGE', 'wal-push: --print-archive-command goes without --worker');
      route = localRoute(path.resolve(io.cwd, values.config), server);
    } else {
      if (values.worker === true) throw new PgbkError('USAGE', 'wal-push: --worker goes without --to (a push over SSH always uses its worker)');
      const opts = optionsFrom(values, server);
      if (values['print-archive-command'] === true) {
        io.stdout.write(`${await fastPathCommand(sshRoute(opts), optionArgs(opts), values.pgdata ?? io.cwd, values['wait-seconds'], io.cwd)}\n`);
        return 0;
      }
      route = sshRoute(opts);
    }
    const file = requirePositional('wal-push', positionals, 1, 'PATH (%p)');
    const reply = await pushThroughWorker(route, file, io.cwd);
    if (reply.ok === true) return 0;
    io.stderr.write(`pgbk wal-push: ${path.basename(path.resolve(io.cwd, file))}: ${reply.error ?? 'failed'}\n`);
    return 1;
  } catch (err) {
    const msg = err instanceof PgbkError || err instanceof Error ? err.message : String(err);
    io.stderr.write(`pgbk wal-push: ${msg}\n`);
    return 1;
  }
}
