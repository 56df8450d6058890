/**
 * Base backups and their backup.json records. A backup appears in listings only through a
 * complete, parsable backup.json, read and written through the repository port; deletion removes
 * backup.json first, then the tree (posix renames it out of sight first), so a crash mid-delete
 * never leaves something that looks like a valid backup.
 *
 * In a local catalog the backup's data directory (what pg_basebackup and the ssh method write into)
 * is a local directory: createBackupDir claims an id by creating it. On object storage the id is
 * claimed by createBackupRecord (the STARTED record, put only if absent) (see open.ts).
 */

import { mkdir, stat } from 'node:fs/promises'; // createBackupDir (the local data directory) and ownerNote
import path from 'node:path';
import { PgbkError } from '../errors.js';
import { describeUser, lookupUser } from '../lib/os-user.js';
import { parseBackupRecord } from '../model/parse-backup-record.js';
import type { BackupRecord } from '../model/types.js';
import { fsyncDir } from '../lib/atomic.js';
import { backupDir, catalogKeys, isBackupId } from './layout.js';
import { locate, osErrorOf, repositoryOf, type CatalogRef, storeErrorMessage } from './open.js';
import { plural } from '../lib/plural.js';

export { isOwnerAlive, type Owner } from '../lib/process-identity.js';

/** UTC YYYYMMDDTHHMMSSZ: sortable as text, one per second (a collision waits a second). */
export function newBackupId(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** The record of backup `id`, or an OS error (ENOENT when it is missing) for the caller to sort out. */
async function readRecordFile(catalog: CatalogRef, server: string, id: string): Promise<BackupRecord> {
  const key = catalogKeys.backupJson(server, id);
  let bytes: Buffer | undefined;
  try {
    bytes = await (await repositoryOf(catalog)).get(key);
  } catch (err) {
    throw osErrorOf(err) ?? err;
  }
  if (bytes === undefined) {
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${locate(catalog, key)}'`), { code: 'ENOENT', path: locate(catalog, key) });
  }
  return parseBackupRecord(bytes.toString('utf8'), { id, server });
}

async function listIds(catalog: CatalogRef, server: string): Promise<string[]> {
  const prefix = catalogKeys.backups(server);
  const ids: string[] = [];
  try {
    for await (const e of (await repositoryOf(catalog)).listNames(prefix)) {
      // Temp objects and deletions in progress are never listed; other non-id names are not ours.
      if (e.kind === 'prefix' && isBackupId(e.key.slice(prefix.length, -1))) ids.push(e.key.slice(prefix.length, -1));
    }
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot list backups: ${storeErrorMessage(err)}`, {
      server,
      path: locate(catalog, prefix),
    });
  }
  return ids.sort();
}

export interface BackupProblem {
  readonly id: string;
  readonly reason: string;
  /** The file or directory that could not be read, when the OS refused (EACCES, EPERM, EIO). */
  readonly path?: string;
  /** The OS refused to read it: the backup may be perfectly good, pgbk just cannot see it. */
  readonly unreadable?: boolean;
  /** backup.json does not exist: a deletion or a start that a crash interrupted (findRecordless). */
  readonly recordMissing?: boolean;
}

/**
 * Errors that mean "cannot read", not "not there" or "not ours": typically a backup written by
 * another OS user (root) that the catalog's owner cannot enter. Such a backup must never be
 * skipped silently: retention and WAL pruning would act as if it did not exist.
 */
const UNREADABLE_CODES: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EIO']);

/** " (… belongs to root (uid 0))": who wrote what we cannot read, the likely cause. */
async function ownerNote(dir: string): Promise<string> {
  try {
    const st = await stat(dir);
    const u = (await lookupUser(st.uid)) ?? { uid: st.uid };
    return `; ${dir} belongs to ${describeUser(u)}`;
  } catch {
    return '';
  }
}

/** Every backup with a readable record, plus the directories whose backup.json is missing or bad. */
export async function readBackupsWithProblems(
  catalog: CatalogRef,
  server: string,
): Promise<{ readonly backups: readonly BackupRecord[]; readonly problems: readonly BackupProblem[] }> {
  const backups: BackupRecord[] = [];
  const problems: BackupProblem[] = [];
  for (const id of await listIds(catalog, server)) {
    try {
      backups.push(await readRecordFile(catalog, server, id));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== undefined && UNREADABLE_CODES.has(e.code)) {
        const file = locate(catalog, catalogKeys.backupJson(server, id));
        problems.push({
          id,
          reason: `cannot read ${file}: ${e.code}${await ownerNote(locate(catalog, catalogKeys.backup(server, id)))}`,
          path: file,
          unreadable: true,
        });
      } else {
        problems.push({
          id,
          reason: e.code === 'ENOENT' ? 'backup.json is missing' : e.message,
          path: locate(catalog, catalogKeys.backupJson(server, id)),
          ...(e.code === 'ENOENT' ? { recordMissing: true } : {}),
        });
      }
    }
  }
  return { backups, problems };
}

/** The error for backups the OS would not let us read, naming each one's path and reason. */
export function unreadableBackupsError(server: string, problems: readonly BackupProblem[]): PgbkError | undefined {
  const unreadable = problems.filter((p) => p.unreadable === true);
  if (unreadable.length === 0) return undefined;
  return new PgbkError('CATALOG', `cannot read ${plural(unreadable.length, 'backup')}: ${unreadable.map((p) => `${p.id} (${p.reason})`).join('; ')}`, {
    server,
    ...(unreadable.length === 1 && unreadable[0]!.path !== undefined ? { path: unreadable[0]!.path } : {}),
    hint: "they were probably written by another OS user (e.g. root): give them back to the catalog's owner (chown -R OWNER CATALOG); pgbk will not act as if they did not exist",
  });
}

/**
 * Backups with a readable backup.json, sorted by id. A backup the OS refuses to read is an error,
 * not a gap: retention, WAL pruning and restore must see every backup there is.
 */
export async function readBackups(catalog: CatalogRef, server: string): Promise<BackupRecord[]> {
  const { backups, problems } = await readBackupsWithProblems(catalog, server);
  const err = unreadableBackupsError(server, problems);
  if (err !== undefined) throw err;
  return [...backups];
}

export async function readBackup(catalog: CatalogRef, server: string, id: string): Promise<BackupRecord> {
  const file = locate(catalog, catalogKeys.backupJson(server, id));
  try {
    return await readRecordFile(catalog, server, id);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new PgbkError('NOT_FOUND', `backup ${id} does not exist`, { server, path: file });
    throw new PgbkError('CATALOG', `backup ${id}: ${e.message}`, { server, path: file, cause: err });
  }
}

/** Write backup.json atomically (a reader sees the old record or the new one, never a mix). */
export async function writeBackupRecord(catalog: CatalogRef, record: BackupRecord): Promise<void> {
  const key = catalogKeys.backupJson(record.server, record.id);
  try {
    await (await repositoryOf(catalog)).put(key, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o640 });
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot write backup.json: ${storeErrorMessage(err)}`, {
      server: record.server,
      path: locate(catalog, key),
      cause: err,
    });
  }
}

/**
 * Claim a backup id on a store without directories (object storage): the STARTED record is
 * created only if absent (a conditional PUT), so of two writers racing for one id exactly one gets
 * 'created'; 'exists' tells the caller to wait a second and retry.
 */
export async function createBackupRecord(catalog: CatalogRef, record: BackupRecord): Promise<'created' | 'exists'> {
  const key = catalogKeys.backupJson(record.server, record.id);
  try {
    return await (await repositoryOf(catalog)).putIfAbsent(key, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o640 });
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot create backup.json: ${storeErrorMessage(err)}`, {
      server: record.server,
      path: locate(catalog, key),
      cause: err,
    });
  }
}

/**
 * Claim a backup id by creating its (local) data directory: mkdir is atomic, so 'exists' tells the
 * caller to wait a second and retry. When backups are written through the port instead, the id is
 * claimed by putIfAbsent of the STARTED backup.json.
 */
export async function createBackupDir(catalog: string, server: string, id: string): Promise<'created' | 'exists'> {
  const dir = backupDir(catalog, server, id);
  await mkdir(path.dirname(dir), { recursive: true });
  try {
    await mkdir(dir, { mode: 0o750 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw new PgbkError('CATALOG', `cannot create backup directory: ${(err as Error).message}`, { server, path: dir });
  }
  await fsyncDir(path.dirname(dir));
  return 'created';
}

/** A backup tree without backup.json and how long ago anything in it last changed. */
export interface RecordlessBackup {
  readonly id: string;
  readonly where: string;
  readonly ageMs: number;
  readonly bytes: number;
}

/**
 * Backup trees without a backup.json: a deletion (which removes backup.json first) or a start
 * (which claims the id before writing its STARTED record) that a crash interrupted. Neither is a
 * backup any listing, restore or retention sees; they only hold space. Age is that of the newest
 * object in the tree (an empty tree counts as old).
 */
export async function findRecordlessBackups(catalog: CatalogRef, server: string, nowMs: number): Promise<RecordlessBackup[]> {
  const repo = await repositoryOf(catalog);
  const { problems } = await readBackupsWithProblems(catalog, server);
  const out: RecordlessBackup[] = [];
  for (const p of problems) {
    if (p.recordMissing !== true) continue;
    let newest = 0;
    let bytes = 0;
    for await (const e of repo.list(catalogKeys.backup(server, p.id), { recursive: true })) {
      if (e.kind !== 'object') continue;
      newest = Math.max(newest, e.mtime.getTime());
      bytes += e.size;
    }
    out.push({ id: p.id, where: locate(catalog, catalogKeys.backup(server, p.id)), ageMs: nowMs - newest, bytes });
  }
  return out;
}

/**
 * Delete a backup: backup.json first (the backup leaves every listing at once, whatever the store),
 * then its whole tree (posix: renamed to backups/.deleting-<id> and removed, finishing any
 * deletion a crash interrupted). Idempotent: deleting a backup that is already gone is a no-op.
 */
export async function deleteBackup(catalog: CatalogRef, server: string, id: string): Promise<void> {
  const repo = await repositoryOf(catalog);
  try {
    await repo.delete([catalogKeys.backupJson(server, id)]);
    await repo.deleteTree(catalogKeys.backup(server, id));
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot delete backup ${id}: ${storeErrorMessage(err)}`, {
      server,
      path: locate(catalog, catalogKeys.backup(server, id)),
    });
  }
}

/** Like readBackup, but a backup that does not exist (deleted since it was planned) is undefined. */
export async function readBackupIfExists(catalog: CatalogRef, server: string, id: string): Promise<BackupRecord | undefined> {
  try {
    return await readBackup(catalog, server, id);
  } catch (err) {
    if (err instanceof PgbkError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}
