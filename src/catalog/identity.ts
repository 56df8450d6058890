/**
 * server.json: which PostgreSQL cluster a catalog belongs to, fixed at first contact. Every WAL
 * file and backup is checked against it, so a re-initialised or wrongly configured server can
 * never mix its files into another cluster's history.
 */

import { chmod, stat } from 'node:fs/promises'; // restrictIdentityMode only: a posix file mode
import { PgbkError } from '../errors.js';
import type { ServerIdentity } from '../model/types.js';
import { isNoSpaceError } from '../lib/free-space.js';
import { catalogKeys, serverJsonPath } from './layout.js';
import { locate, osErrorOf, repositoryOf, type CatalogRef, storeErrorMessage } from './open.js';

const SYSID_RE = /^\d{1,20}$/;

function parseIdentity(text: string, file: string, server: string): ServerIdentity {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new PgbkError('CATALOG', `server.json is not valid JSON: ${(err as Error).message}`, { server, path: file });
  }
  const o = data as Record<string, unknown> | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    typeof o.systemIdentifier !== 'string' ||
    !SYSID_RE.test(o.systemIdentifier) ||
    typeof o.pgVersion !== 'number' ||
    typeof o.walSegmentSize !== 'number' ||
    typeof o.firstContact !== 'string'
  ) {
    throw new PgbkError('CATALOG', 'server.json lacks systemIdentifier (decimal string), pgVersion, walSegmentSize or firstContact', { server, path: file });
  }
  return {
    systemIdentifier: o.systemIdentifier,
    pgVersion: o.pgVersion,
    walSegmentSize: o.walSegmentSize,
    firstContact: o.firstContact,
  };
}

/** The recorded identity, or undefined before first contact. */
export async function readIdentity(catalog: CatalogRef, server: string): Promise<ServerIdentity | undefined> {
  const key = catalogKeys.serverJson(server);
  const file = locate(catalog, key);
  let bytes: Buffer | undefined;
  // Opened outside the try: a store that cannot be opened (an object store that is unreachable, a
  // missing bucket, refused credentials) says so itself, naming the store, better than any wrapper.
  const repo = await repositoryOf(catalog);
  try {
    bytes = await repo.get(key);
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot read server.json: ${storeErrorMessage(err)}`, { server, path: file });
  }
  return bytes === undefined ? undefined : parseIdentity(bytes.toString('utf8'), file, server);
}

function mismatch(server: string, file: string, recorded: ServerIdentity, seen: ServerIdentity): PgbkError | undefined {
  if (recorded.systemIdentifier !== seen.systemIdentifier) {
    return new PgbkError('IDENTITY', `server reports cluster ${seen.systemIdentifier}, but the catalog belongs to cluster ${recorded.systemIdentifier}`, {
      server,
      path: file,
      hint: `this catalog belongs to cluster ${recorded.systemIdentifier}; point the server at a new catalog or remove ${file} if the cluster was re-initialised on purpose`,
    });
  }
  if (recorded.walSegmentSize !== seen.walSegmentSize) {
    return new PgbkError('IDENTITY', `server reports WAL segment size ${seen.walSegmentSize}, the catalog recorded ${recorded.walSegmentSize}`, {
      server,
      path: file,
      hint: 'the cluster was changed with pg_resetwal --wal-segsize; archive it into a new catalog',
    });
  }
  return undefined;
}

/**
 * Record the identity at first contact, or check it against the recorded one. Two first contacts
 * racing are settled by a no-clobber link: the loser compares against the winner's file.
 * Returns the identity on record (whose firstContact and pgVersion are the original ones).
 */
export async function recordIdentity(catalog: CatalogRef, server: string, identity: ServerIdentity): Promise<ServerIdentity> {
  const key = catalogKeys.serverJson(server);
  const file = locate(catalog, key);
  let recorded = await readIdentity(catalog, server);
  if (recorded === undefined) {
    let outcome: 'created' | 'exists';
    try {
      outcome = await (await repositoryOf(catalog)).putIfAbsent(key, `${JSON.stringify(identity, null, 2)}\n`, { mode: 0o640 });
    } catch (err) {
      // A full disk stays the OS error it always was: callers name the file and the free space.
      const os = osErrorOf(err);
      throw os !== undefined && isNoSpaceError(os) ? os : err;
    }
    if (outcome === 'created') return identity;
    recorded = await readIdentity(catalog, server);
    if (recorded === undefined) throw new PgbkError('CATALOG', 'server.json vanished while it was written', { server, path: file });
  }
  const err = mismatch(server, file, recorded, identity);
  if (err !== undefined) throw err;
  return recorded;
}

/**
 * server.json written by an older pgbk (0644) loses its world bits, like every other catalog file
 * (0640). Returns whether it changed anything; a missing file is fine. A repair of a local file's
 * mode, so on the file itself (the repository port has no modes to change).
 */
export async function restrictIdentityMode(catalog: string, server: string): Promise<boolean> {
  const file = serverJsonPath(catalog, server);
  let mode: number;
  try {
    mode = (await stat(file)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if ((mode & 0o007) === 0) return false;
  await chmod(file, mode & ~0o007);
  return true;
}
