/**
 * The one place that turns the configured `catalog:` into a Repository (DESIGN.md §4, "Repository
 * port and drivers"). Today a catalog is a local directory, served by the posix driver; a second
 * driver is one more RepositoryKind and one more case in openRepository's switch.
 *
 * Not behind the port, and so still plain local directories (under the catalog root, or an object
 * store's `s3.spool`: local-spool.ts): incoming/ (the spool archive_command and wal-receive write into),
 * streaming/ (pg_receivewal's directory), and, in a local catalog, the data directory of each
 * backup that pg_basebackup and the ssh method write into (a backup id is claimed by creating it).
 * In an object-storage catalog a basebackup's archive is streamed through Repository.openWrite and
 * its id claimed by creating its backup.json only if absent (backup/basebackup-stream.ts). Backup
 * records, server.json, the lock, errors/ and everything in the WAL archive go through the port.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { registerSpool } from './local-spool.js';
import { openPosixRepository } from './posix/driver.js';
import type { S3RepositoryConfig } from '../config/resolved.js';
import type { Repository } from './repository.js';

export type RepositoryKind = 'posix' | 's3';

/**
 * Settings of object-storage catalogs, by catalog URL as configured. The catalog functions take the
 * configured catalog as a string (CatalogRef), so the settings that a URL alone cannot carry
 * (endpoint, region, TLS, profile) are registered once, where the configuration is loaded.
 */
const s3Settings = new Map<string, S3RepositoryConfig>();

/** Make `cfg` the settings used to open the catalog `cfg.url` in this process. */
export function registerS3Catalog(cfg: S3RepositoryConfig): void {
  s3Settings.set(cfg.url, cfg);
  registerSpool(cfg.url, cfg.spool);
}

/** "ftp" for "ftp://host/x": a URL scheme names the kind of store; anything else is a directory. */
const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/** The kind of store `catalog` names: a URL's scheme, or 'posix' for a local directory. */
export function repositoryKindOf(catalog: string): string {
  return SCHEME_RE.exec(catalog)?.[1]?.toLowerCase() ?? 'posix';
}

/** Open the repository `catalog` names (fails naming it when the store cannot be reached). */
export async function openRepository(catalog: string): Promise<Repository> {
  const kind = repositoryKindOf(catalog) as RepositoryKind;
  switch (kind) {
    case 'posix':
      return openPosixRepository(catalog);
    case 's3': {
      const cfg = s3Settings.get(catalog);
      if (cfg === undefined) {
        throw new PgbkError('INTERNAL', `catalog ${catalog}: its s3 settings were not registered before it was opened`, { path: catalog });
      }
      // Loaded only here: the AWS SDK costs 250–360 ms to import, which no posix command should pay.
      const { openS3Repository } = await import('./s3/driver.js');
      return openS3Repository(cfg);
    }
    default: {
      const unknown: never = kind;
      throw new PgbkError('CONFIG', `catalog ${catalog}: unknown repository kind "${String(unknown)}"`, {
        path: catalog,
        hint: 'catalog: is a local directory (an absolute path)',
      });
    }
  }
}

/**
 * What the catalog functions accept: a Repository a caller opened once with openRepository, or the
 * configured catalog, opened here on first use and then reused for the rest of the process.
 */
export type CatalogRef = string | Repository;

const opened = new Map<string, Repository>();

/** Reads of a local catalog whose directory does not exist yet: it holds nothing (as before the port). */
function notCreatedYet(catalog: string, cause: PgbkError): Repository {
  const refuse = (): Promise<never> => Promise.reject(cause);
  const nothing = async function* (): AsyncGenerator<never> {};
  return {
    where: (key) => locate(catalog, key),
    get: async () => undefined,
    read: async () => undefined,
    stat: async () => undefined,
    put: refuse,
    putIfAbsent: refuse,
    openWrite: refuse,
    list: nothing,
    listNames: nothing,
    delete: async () => undefined,
    deleteTree: async () => undefined,
    tryLock: refuse,
    readLock: async () => undefined,
  };
}

function isMissingDirectory(err: unknown): boolean {
  return err instanceof PgbkError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** The Repository of `catalog`; a configured catalog is opened once per process. */
export async function repositoryOf(catalog: CatalogRef): Promise<Repository> {
  if (typeof catalog !== 'string') return catalog;
  const known = opened.get(catalog);
  if (known !== undefined) return known;
  let repo: Repository;
  try {
    repo = await openRepository(catalog);
  } catch (err) {
    // Not remembered: the first write creates the directory (layout.ts ensureServerDirs).
    if (repositoryKindOf(catalog) === 'posix' && isMissingDirectory(err)) return notCreatedYet(catalog, err as PgbkError);
    throw err;
  }
  opened.set(catalog, repo);
  return repo;
}

/**
 * Where `key` is, for messages: under the configured catalog as written (as pgbk always named its
 * files), or as an opened Repository names it.
 */
export function locate(catalog: CatalogRef, key: string): string {
  const k = key.endsWith('/') ? key.slice(0, -1) : key;
  if (typeof catalog !== 'string') return catalog.where(k);
  // A URL is not a path: path.join would fold its "//" and make s3://b/p look like s3:/b/p.
  if (repositoryKindOf(catalog) !== 'posix') return `${catalog.replace(/\/+$/, '')}/${k}`;
  return path.join(catalog, ...key.split('/'));
}

/**
 * The OS error under a driver's PgbkError (drivers wrap every failure with the key's location):
 * callers that tell "unreadable" from "missing", or a full disk from other failures, look at it.
 */
/**
 * What to say after "cannot …: " for a repository failure: a file system error's own message (the
 * posix driver's wrapper would repeat the path), or the driver's explanation otherwise — an object
 * store's raw cause ("connect ECONNREFUSED 127.0.0.1:9") would drop the endpoint and the hint it
 * names ("cannot reach http://…").
 */
export function storeErrorMessage(err: unknown): string {
  const inner = err instanceof PgbkError ? err.cause : err;
  if (inner instanceof Error && typeof (inner as NodeJS.ErrnoException).path === 'string') return inner.message;
  return err instanceof Error ? err.message : String(err);
}

export function osErrorOf(err: unknown): NodeJS.ErrnoException | undefined {
  const inner = err instanceof PgbkError ? err.cause : err;
  return inner instanceof Error && typeof (inner as NodeJS.ErrnoException).code === 'string' ? (inner as NodeJS.ErrnoException) : undefined;
}
