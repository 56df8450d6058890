/**
 * `pgbk wal-serve --catalog DIR SERVER` (hidden): the backup-host end of wal-fetch over SSH,
 * started once per fetch worker connection on an exec channel; requests on stdin, stored WAL on
 * stdout (wal-fetch/serve.ts has the protocol).
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { serveWal } from '../wal-fetch/serve.js';
import { WAL_SERVE_OPTIONS } from './commands.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';
import { reportError } from './report-error.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values, positionals } = parseCommand('wal-serve', args, WAL_SERVE_OPTIONS);
    debug = values.debug === true;
    const server = requirePositional('wal-serve', positionals, 0, 'SERVER');
    if (values.catalog === undefined || !path.isAbsolute(values.catalog)) {
      throw new PgbkError('USAGE', 'wal-serve: --catalog must be an absolute path');
    }
    return await serveWal(values.catalog, server, process.stdin, io.stdout);
  } catch (err) {
    return reportError(err, io, debug);
  }
}
