/**
 * Where things live in the catalog (DESIGN.md §4):
 *
 *   <catalog>/<server>/
 *     server.json
 *     backups/<id>/backup.json …
 *     wal/<TTTTTTTTLLLLLLLL>/<segment>[.zst|.gz]     segments, NAME.partial, NAME.<8-hex offset>.backup
 *     wal/<TTTTTTTTLLLLLLLL>/SHA256SUMS              sha256 of each stored file (sha256sum -c works)
 *     wal/<TT…>.history, wal/SHA256SUMS               timeline history files sit at the top of wal/
 *     incoming/  errors/  lock
 *
 * History files are kept at the top of wal/ (as Barman keeps them at the top of wals/): they have
 * no log part to file them under, and there are few of them.
 */

import { chmod, chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { walDirName } from '../pg/wal-name.js';
import { extensionFor } from './compress.js';
import { localRootOf, requireLocalRoot } from './local-spool.js';

const SERVER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function checkServer(server: string): string {
  if (!SERVER_NAME_RE.test(server) || server === '..' || server === '.') {
    throw new PgbkError('CATALOG', `invalid server name "${server}" for a catalog directory`);
  }
  return server;
}

export function serverDir(catalog: string, server: string): string {
  return path.join(catalog, checkServer(server));
}

export function serverJsonPath(catalog: string, server: string): string {
  return path.join(serverDir(catalog, server), 'server.json');
}

export function backupsDir(catalog: string, server: string): string {
  return path.join(serverDir(catalog, server), 'backups');
}

const BACKUP_ID_RE = /^\d{8}T\d{6}Z$/;

export function isBackupId(id: string): boolean {
  return BACKUP_ID_RE.test(id);
}

export function backupDir(catalog: string, server: string, id: string): string {
  if (!isBackupId(id)) throw new PgbkError('CATALOG', `invalid backup id "${id}"`, { server });
  return path.join(backupsDir(catalog, server), id);
}

export function backupJsonPath(catalog: string, server: string, id: string): string {
  return path.join(backupDir(catalog, server, id), 'backup.json');
}

export function walRoot(catalog: string, server: string): string {
  return path.join(serverDir(catalog, server), 'wal');
}

/** Directory an archived WAL file (segment, .partial, .backup or .history) is stored in. */
export function walDirFor(catalog: string, server: string, name: string): string {
  return path.join(walRoot(catalog, server), walDirName(name));
}

/** Stored path of an archived WAL file under a compression. */
export function walPath(catalog: string, server: string, name: string, compression: Compression): string {
  return path.join(walDirFor(catalog, server, name), name + extensionFor(compression));
}

/**
 * A server's directory for its local parts (incoming/, streaming/): the server directory of a local
 * catalog, or <spool>/<server> of an object-storage catalog; `what` names the part for the error
 * when that catalog has no spool.
 */
export function localServerDir(catalog: string, server: string, what: string): string {
  return path.join(requireLocalRoot(catalog, what), checkServer(server));
}

export function incomingDir(catalog: string, server: string): string {
  return path.join(localServerDir(catalog, server, 'incoming/'), 'incoming');
}

export function errorsDir(catalog: string, server: string): string {
  return path.join(serverDir(catalog, server), 'errors');
}

export function lockPath(catalog: string, server: string): string {
  return path.join(serverDir(catalog, server), 'lock');
}

/**
 * The same layout as repository keys (catalog/repository.ts): '/'-separated and relative to the
 * catalog root, which is the repository's root. A key ending in '/' is a prefix ("directory").
 */
export const catalogKeys = {
  server: (server: string): string => checkServer(server),
  serverJson: (server: string): string => `${checkServer(server)}/server.json`,
  backups: (server: string): string => `${checkServer(server)}/backups/`,
  backup(server: string, id: string): string {
    if (!isBackupId(id)) throw new PgbkError('CATALOG', `invalid backup id "${id}"`, { server });
    return `${checkServer(server)}/backups/${id}/`;
  },
  backupJson: (server: string, id: string): string => `${catalogKeys.backup(server, id)}backup.json`,
  walRoot: (server: string): string => `${checkServer(server)}/wal/`,
  /** The prefix an archived WAL file (segment, .partial, .backup or .history) is stored under. */
  walDirFor(server: string, name: string): string {
    const dir = walDirName(name);
    return dir === '' ? catalogKeys.walRoot(server) : `${catalogKeys.walRoot(server)}${dir}/`;
  },
  wal: (server: string, name: string, compression: Compression): string => `${catalogKeys.walDirFor(server, name)}${name}${extensionFor(compression)}`,
  errors: (server: string): string => `${checkServer(server)}/errors/`,
  /** The `ssh` method's content-addressed chunks on object storage (catalog/chunk-store.ts). */
  chunks: (server: string): string => `${checkServer(server)}/chunks/`,
  lock: (server: string): string => `${checkServer(server)}/lock`,
};

export interface EnsureDirsOptions {
  /**
   * Owner for incoming/: PostgreSQL's archive_command runs as the database's OS user and must be
   * able to create files there, while pgbk itself may run as another user.
   */
  readonly incomingOwner?: { readonly uid: number; readonly gid: number };
}

/** Create the server's directories (idempotent). incoming/ is 0770 so its owner group may write. */
export async function ensureServerDirs(catalog: string, server: string, opts: EnsureDirsOptions = {}): Promise<void> {
  const local = localRootOf(catalog);
  // An object store has no directories to create; only its spool (if any) is local.
  if (local === undefined) return;
  const dir = path.join(local, checkServer(server));
  try {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    if (local === catalog) {
      for (const sub of [backupsDir, walRoot, errorsDir]) {
        await mkdir(sub(catalog, server), { recursive: true, mode: 0o750 });
      }
    }
    const incoming = incomingDir(catalog, server);
    await mkdir(incoming, { recursive: true, mode: 0o770 });
    await chmod(incoming, 0o770); // mkdir's mode is filtered by the umask
    if (opts.incomingOwner !== undefined) {
      await chown(incoming, opts.incomingOwner.uid, opts.incomingOwner.gid);
      // The database user must reach incoming/ through the server directory.
      await chmod(dir, 0o755);
    }
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot create catalog directories: ${(err as Error).message}`, {
      server,
      path: dir,
      cause: err,
    });
  }
}
