/**
 * Temp files of interrupted writes. Every pgbk write goes through a dot-named temp file beside its
 * target (`.NAME.tmp-PID-RANDOM`, atomic.ts); a writer killed between creating it and the rename
 * leaves it behind. Readers ignore dot-names, so leftovers are harmless but hold space (a 16 MiB
 * segment each) forever. The writer holding the server lock removes those that are old enough and
 * whose writer is gone; wal-push writes without the lock, hence both conditions: a live writer's
 * pid is alive, and no write takes an hour.
 *
 * Only the directories pgbk writes temp files into are scanned (one readdir each, no recursion
 * into backup trees): the server directory (server.json, lock), backups/ and each backup's top
 * level and data/ (backup.json, files.json, backup_label), wal/ and each log directory (segments,
 * SHA256SUMS), incoming/ (wal-receive), errors/ (quarantine reasons). Foreign files (an
 * archive_command's own `.NAME.tmp`, pg_receivewal's `.partial`) never match the pattern.
 */

import type { Dirent } from 'node:fs';
import { lstat, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isSameProcessAlive } from '../lib/process-identity.js';
import { fsyncDir } from '../lib/atomic.js';
import { backupsDir, errorsDir, incomingDir, isBackupId, localServerDir, serverDir, walRoot } from './layout.js';
import { localRootOf } from './local-spool.js';
import { mapLimited } from '../lib/map-limited.js';

/** A crash leftover is at least this old: no pgbk write takes an hour between two writes. */
export const LEFTOVER_MIN_AGE_MS = 3600_000;

/** tempPathFor's names: `.NAME.tmp-PID-HEX`. */
const TEMP_RE = /^\..+\.tmp-(\d+)-[0-9a-f]+$/;

export interface Leftover {
  /** Relative to the server directory, for the report. */
  readonly rel: string;
  readonly path: string;
  readonly size: number;
  readonly ageMs: number;
  readonly pid: number;
}

/** The writer pid named by a temp file name of ours, or undefined for any other name. */
export function tempWriterPid(name: string): number | undefined {
  const m = TEMP_RE.exec(name);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

interface Scanned {
  readonly dir: string;
  /** Only temp files of these targets: data/ is a copy of the user's PGDATA, whose files are not ours. */
  readonly onlyFor?: readonly string[];
}

/** The directories that can hold our temp files (see the module comment). */
async function scannedDirs(catalog: string, server: string): Promise<Scanned[]> {
  // An object-storage catalog: its writes leave no temp files (multipart uploads are its
  // leftovers); only its spool's incoming/ (wal-receive's temp files) is local.
  const local = localRootOf(catalog);
  if (local !== catalog) return local === undefined ? [] : [{ dir: incomingDir(catalog, server) }];
  const dirs: Scanned[] = [
    serverDir(catalog, server),
    backupsDir(catalog, server),
    walRoot(catalog, server),
    incomingDir(catalog, server),
    errorsDir(catalog, server),
  ].map((dir) => ({ dir }));
  for (const e of await entries(backupsDir(catalog, server))) {
    if (!e.isDirectory() || !isBackupId(e.name)) continue;
    const dir = path.join(backupsDir(catalog, server), e.name);
    dirs.push({ dir }, { dir: path.join(dir, 'data'), onlyFor: ['backup_label', 'tablespace_map'] });
  }
  for (const e of await entries(walRoot(catalog, server))) {
    if (e.isDirectory() && /^[0-9A-F]{16}$/.test(e.name)) dirs.push({ dir: path.join(walRoot(catalog, server), e.name) });
  }
  return dirs;
}

/**
 * Leftover temp files: our temp-name pattern, a regular file, last modified at least `minAgeMs`
 * before `nowMs`, and written by a process that is no longer running. Read-only.
 */
export async function findLeftovers(catalog: string, server: string, nowMs: number, minAgeMs = LEFTOVER_MIN_AGE_MS): Promise<Leftover[]> {
  // An object-storage catalog without s3.spool has no local files to leave behind.
  if (localRootOf(catalog) === undefined) return [];
  const root = localRootOf(catalog) === catalog ? serverDir(catalog, server) : localServerDir(catalog, server, 'incoming/');
  const perDir = await mapLimited(await scannedDirs(catalog, server), 16, async ({ dir, onlyFor }) => {
    const found: Leftover[] = [];
    for (const e of await entries(dir)) {
      const pid = tempWriterPid(e.name);
      if (pid === undefined || !e.isFile()) continue;
      if (onlyFor !== undefined && !onlyFor.some((target) => e.name.startsWith(`.${target}.tmp-`))) continue;
      const file = path.join(dir, e.name);
      let st;
      try {
        st = await lstat(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // renamed into place meanwhile
        throw err;
      }
      const ageMs = nowMs - st.mtimeMs;
      if (ageMs < minAgeMs || isSameProcessAlive({ pid })) continue;
      found.push({ rel: path.relative(root, file), path: file, size: st.size, ageMs, pid });
    }
    return found;
  });
  return perDir.flat().sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** Remove leftovers found by findLeftovers (gone already: fine); returns those removed. */
export async function removeLeftovers(leftovers: readonly Leftover[]): Promise<Leftover[]> {
  const removed: Leftover[] = [];
  const dirs = new Set<string>();
  for (const l of leftovers) {
    try {
      await unlink(l.path);
      removed.push(l);
      dirs.add(path.dirname(l.path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  for (const dir of dirs) await fsyncDir(dir);
  return removed;
}
