/**
 * Base backup directories and their backup.json records. A backup appears in listings only
 * through a complete, parsable backup.json; deletion first renames the directory out of sight, so
 * a crash mid-delete never leaves something that looks like a valid backup.
 */

import { readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import { describeUser, lookupUser } from '../lib/os-user.js';
import { isSameProcessAlive } from '../lib/process-identity.js';
import { parseBackupRecord } from '../model/parse-backup-record.js';
import type { BackupRecord } from '../model/types.js';
import { fsyncDir, writeFileAtomic } from '../lib/atomic.js';
import { backupDir, backupJsonPath, backupsDir, isBackupId } from './layout.js';
import { plural } from '../lib/plural.js';

const DELETING_PREFIX = '.deleting-';

/** UTC YYYYMMDDTHHMMSSZ: sortable as text, one per second (a collision waits a second). */
export function newBackupId(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

async function readRecordFile(catalog: string, server: string, id: string): Promise<BackupRecord> {
  // Synchronous on purpose: a few hundred small files read one after another, where each async
  // read costs four thread-pool round trips (open, stat, read, close) — most of `list`'s time.
  const text = readFileSync(backupJsonPath(catalog, server, id), 'utf8');
  return parseBackupRecord(text, { id, server });
}

async function listIds(catalog: string, server: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(backupsDir(catalog, server));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PgbkError('CATALOG', `cannot list backups: ${(err as Error).message}`, {
      server,
      path: backupsDir(catalog, server),
    });
  }
  // Dot-names are deletions or temp files in progress; other non-id names are not ours.
  return names.filter(isBackupId).sort();
}

export interface BackupProblem {
  readonly id: string;
  readonly reason: string;
  /** The file or directory that could not be read (the OS refused: EACCES, EPERM, EIO), or the bad backup.json. */
  readonly path?: string;
  /** The OS refused to read it: the backup may be perfectly good, pgbk just cannot see it. */
  readonly unreadable?: boolean;
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
  catalog: string,
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
        const file = e.path ?? backupJsonPath(catalog, server, id);
        problems.push({ id, reason: `cannot read ${file}: ${e.code}${await ownerNote(backupDir(catalog, server, id))}`, path: file, unreadable: true });
      } else {
        problems.push({ id, reason: e.code === 'ENOENT' ? 'backup.json is missing' : e.message, path: backupJsonPath(catalog, server, id) });
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
export async function readBackups(catalog: string, server: string): Promise<BackupRecord[]> {
  const { backups, problems } = await readBackupsWithProblems(catalog, server);
  const err = unreadableBackupsError(server, problems);
  if (err !== undefined) throw err;
  return [...backups];
}

export async function readBackup(catalog: string, server: string, id: string): Promise<BackupRecord> {
  const file = backupJsonPath(catalog, server, id);
  try {
    return await readRecordFile(catalog, server, id);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new PgbkError('NOT_FOUND', `backup ${id} does not exist`, { server, path: file });
    throw new PgbkError('CATALOG', `backup ${id}: ${e.message}`, { server, path: file, cause: err });
  }
}

/** Write backup.json atomically; the backup directory must exist (createBackupDir). */
export async function writeBackupRecord(catalog: string, record: BackupRecord): Promise<void> {
  const file = backupJsonPath(catalog, record.server, record.id);
  try {
    await writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o640 });
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot write backup.json: ${(err as Error).message}`, {
      server: record.server,
      path: file,
      cause: err,
    });
  }
}

/** Claim a backup id: mkdir is atomic, so 'exists' tells the caller to wait a second and retry. */
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

/** Finish deletions a crash interrupted (directories renamed to .deleting-<id>). */
export async function removeDeletingLeftovers(catalog: string, server: string): Promise<number> {
  const root = backupsDir(catalog, server);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const leftovers = names.filter((n) => n.startsWith(DELETING_PREFIX));
  for (const name of leftovers) await rm(path.join(root, name), { recursive: true, force: true });
  if (leftovers.length > 0) await fsyncDir(root);
  return leftovers.length;
}

/**
 * Delete a backup: rename it to backups/.deleting-<id> (it leaves every listing at once), fsync,
 * then remove the tree. Idempotent: deleting a backup that is already gone is a no-op.
 */
export async function deleteBackup(catalog: string, server: string, id: string): Promise<void> {
  const dir = backupDir(catalog, server, id);
  const root = path.dirname(dir);
  const doomed = path.join(root, `${DELETING_PREFIX}${id}`);
  // A leftover .deleting-<id> from a crash would make the rename below fail.
  await removeDeletingLeftovers(catalog, server);
  try {
    await rename(dir, doomed);
    await fsyncDir(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      throw new PgbkError('CATALOG', `cannot delete backup ${id}: ${(err as Error).message}`, { server, path: dir });
    }
  }
  await removeDeletingLeftovers(catalog, server);
}

export interface Owner {
  readonly pid: number;
  readonly host: string;
  /** processIdentity().processStart of the owner; absent in records written before it existed. */
  readonly processStart?: string;
}

/**
 * Whether the process that owns a lock or a STARTED backup may still be running. Only a process on
 * this host can be checked; one on another host is presumed alive (waiting is safe, stealing is not).
 * On this host the pid must be alive and, when recorded, its start must match: a dead owner's pid
 * reused by another process does not keep it "alive".
 */
export function isOwnerAlive(owner: Owner, thisHost: string): boolean {
  if (owner.host !== thisHost) return true;
  return isSameProcessAlive(owner);
}

/** Like readBackup, but a backup that does not exist (deleted since it was planned) is undefined. */
export async function readBackupIfExists(catalog: string, server: string, id: string): Promise<BackupRecord | undefined> {
  try {
    return await readBackup(catalog, server, id);
  } catch (err) {
    if (err instanceof PgbkError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}
