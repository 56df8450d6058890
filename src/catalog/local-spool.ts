/**
 * Where the local directories of a catalog are: incoming/ (where a plain archive_command copies
 * WAL) and streaming/ (pg_receivewal's directory) are files on this host, not objects behind the
 * repository port (open.ts). For a local catalog they sit in the catalog directory itself, as they
 * always did; for an object-storage catalog in its configured spool directory (`s3.spool`), and
 * when none is configured there are none (WAL then reaches the bucket through pgbk wal-push only).
 */

import { PgbkError } from '../errors.js';

/** Spool directories of object-storage catalogs, by catalog URL (registered where the config is loaded). */
const spools = new Map<string, string | undefined>();

const URL_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** Record the spool of the object-storage catalog `url` (undefined: it has none). */
export function registerSpool(url: string, spool: string | undefined): void {
  spools.set(url, spool);
}

/** The local root incoming/ and streaming/ live under, or undefined when the catalog has none. */
export function localRootOf(catalog: string): string | undefined {
  return URL_RE.test(catalog) ? spools.get(catalog) : catalog;
}

/** As localRootOf, failing with a message that says what to configure. */
export function requireLocalRoot(catalog: string, what: string): string {
  const root = localRootOf(catalog);
  if (root === undefined) {
    throw new PgbkError('CONFIG', `catalog ${catalog}: ${what} needs a local spool directory, and none is configured`, {
      path: catalog,
      hint: 'set s3.spool to a local directory (or archive with pgbk wal-push, which writes straight to the bucket)',
    });
  }
  return root;
}
