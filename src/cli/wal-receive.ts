/**
 * `pgbk wal-receive --catalog DIR [--compression C] SERVER` (hidden): the backup-host end of
 * wal-push over SSH, started once per worker connection on an exec channel; frames on stdin,
 * replies on stdout (wal-push/receive.ts has the protocol and the archiving).
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { receiveFrames } from '../wal-push/receive.js';
import { parseCompression } from '../wal-push/target.js';
import { WAL_RECEIVE_OPTIONS } from './commands.js';
import type { CliIo } from './io.js';
import { parseCommand, requirePositional } from './options.js';
import { reportError } from './report-error.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values, positionals } = parseCommand('wal-receive', args, WAL_RECEIVE_OPTIONS);
    debug = values.debug === true;
    const server = requirePositional('wal-receive', positionals, 0, 'SERVER');
    if (values.catalog === undefined || !path.isAbsolute(values.catalog)) {
      throw new PgbkError('USAGE', 'wal-receive: --catalog must be an absolute path');
    }
    const catalog = values.catalog;
    const compression = parseCompression(values.compression);
    // Logged in over SSH as root: become the catalog's owner first; as another user: refuse
    // (src/catalog/owner.ts), before the first directory is made.
    const { ensureCatalogUser } = await import('../catalog/owner.js');
    await ensureCatalogUser({ catalog, access: 'write', command: 'wal-receive', log: (line) => io.stderr.write(`${line}\n`) });
    await receiveFrames(catalog, server, compression, process.stdin, io.stdout);
    return 0;
  } catch (err) {
    return reportError(err, io, debug);
  }
}
