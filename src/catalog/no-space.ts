/**
 * A full catalog filesystem, reported so a DBA can act: the server, the file pgbk was writing, and
 * the free space there now (Node's own message is a bare "ENOSPC: no space left on device, write").
 * Callers remove their temp files first; the message then says nothing half-written was kept.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { describeFreeSpace, isNoSpaceError } from '../lib/free-space.js';

export { isNoSpaceError } from '../lib/free-space.js';

export interface NoSpaceContext {
  readonly server: string;
  /** The file being written when the filesystem filled up. */
  readonly file: string;
  /** What it is, for the reader: "WAL file 0000…01", "backup 20261124T030004Z". */
  readonly what?: string;
}

/** The PgbkError for a disk-full `err` (ENOSPC or EDQUOT). */
export async function noSpaceError(err: unknown, ctx: NoSpaceContext): Promise<PgbkError> {
  const quota = (err as NodeJS.ErrnoException | undefined)?.code === 'EDQUOT';
  const why = quota ? 'disk quota exceeded' : 'no space left on device';
  const what = ctx.what === undefined ? '' : ` (${ctx.what})`;
  return new PgbkError('CATALOG', `${why} writing ${ctx.file}${what}: ${await describeFreeSpace(path.dirname(ctx.file))}`, {
    server: ctx.server,
    path: ctx.file,
    cause: err,
    hint: 'free space on that filesystem or move the catalog to a larger one; the partial file was removed',
  });
}

/** Rethrow `err` as noSpaceError when it is a disk-full error, else unchanged. */
export async function rethrowNoSpace(err: unknown, ctx: NoSpaceContext): Promise<never> {
  if (isNoSpaceError(err)) throw await noSpaceError(err, ctx);
  throw err;
}
