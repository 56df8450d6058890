/**
 * `pgbk wal-push --to ssh://USER@HOST[:PORT]/CATALOG [--identity F] [--known-hosts F]
 * [--remote-pgbk CMD] [--compression C] SERVER %p`: the per-segment archive_command for a catalog
 * on another host (wal-push/client.ts does the work). Exit 0 only when the worker reports the file
 * durable in the remote archive; 1 with the reason on stderr otherwise.
 * `--print-archive-command [--pgdata DIR] [--wait-seconds N]` prints the recommended
 * archive_command instead: the shell fast path of wal-push/fast-path.ts in front of this client.
 * Kept as light as the client: it runs once per WAL segment.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { pushThroughWorker, remoteArchiveCommand } from '../wal-push/client.js';
import { optionsFrom } from '../wal-push/target.js';
import { WAL_PUSH_REMOTE_OPTIONS } from './commands.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseCommand('wal-push', args, WAL_PUSH_REMOTE_OPTIONS);
    const server = requirePositional('wal-push', positionals, 0, 'SERVER');
    const opts = optionsFrom(values, server);
    if (values['print-archive-command'] === true) {
      io.stdout.write(`${await remoteArchiveCommand(opts, values.pgdata ?? io.cwd, values['wait-seconds'], io.cwd)}\n`);
      return 0;
    }
    const file = requirePositional('wal-push', positionals, 1, 'PATH (%p)');
    const reply = await pushThroughWorker(opts, file, io.cwd);
    if (reply.ok === true) return 0;
    io.stderr.write(`pgbk wal-push: ${path.basename(path.resolve(io.cwd, file))}: ${reply.error ?? 'failed'}\n`);
    return 1;
  } catch (err) {
    const msg = err instanceof PgbkError || err instanceof Error ? err.message : String(err);
    io.stderr.write(`pgbk wal-push: ${msg}\n`);
    return 1;
  }
}
