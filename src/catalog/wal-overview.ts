/**
 * The WAL archive as `list` and `status` show it (model/wal-runs.ts): counts, first and last
 * segment, the newest one's mtime — fast on an archive of hundreds of thousands of segments.
 *
 * Each log directory's runs are kept in a per-user index (lib/user-cache.ts) under the directory's
 * identity: inode, mtime and ctime. Adding, renaming or removing an entry changes
 * the directory's mtime and ctime, and nothing can set a ctime back, so an unchanged identity means
 * unchanged names; a directory is listed again whenever it differs. Racy case (git's "racily
 * clean"): file system clocks tick coarsely, so a change within the same tick as the listing could
 * keep the identity: a directory whose ctime is less than RACY_MARGIN_MS before its listing is
 * never indexed, only listed each time (the one log directory being written to, typically). The
 * index is only ever a shortcut: the planner and every writer list the archive itself
 * (wal-archive.ts).
 */

import { type Dirent, readdirSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import { sha256Hex } from '../lib/checksum.js';
import { readCacheJson, writeCacheJson } from '../lib/user-cache.js';
import { mergeRuns, overviewOf, runName, runsOf, type WalOverview, type WalRun } from '../model/wal-runs.js';
import { isSegmentName } from '../pg/wal-name.js';
import { compressionOfFile, extensionFor } from './compress.js';
import { walRoot } from './layout.js';
import { repositoryKindOf } from './open.js';
import { CHECKSUMS_FILE } from './posix/checksums.js';

/** A directory changed less than this long before it was listed may change again unseen. */
export const RACY_MARGIN_MS = 2000;

const INDEX_VERSION = 2;

interface DirEntry {
  readonly ino: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly runs: readonly WalRun[];
  /** The stored file name of the directory's highest segment (for its mtime). */
  readonly newest?: string;
}

interface WalIndex {
  readonly version: number;
  readonly root: string;
  readonly rootIno: number;
  readonly dirs: Readonly<Record<string, DirEntry>>;
}

export interface OverviewOptions {
  /** Where the per-user index lives (userCacheDir); undefined: no index, every directory listed. */
  readonly cacheDir?: string;
  /** The clock, for the racy margin (tests). */
  readonly nowMs?: () => number;
}

// Millisecond floats (sub-microsecond resolution) are plenty: a change after a listing is seconds
// away from the indexed times (RACY_MARGIN_MS), and BigInt stats cost a read view its speed.
function statOf(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function sameIdentity(e: DirEntry, st: Stats): boolean {
  return e.ino === st.ino && e.mtimeMs === st.mtimeMs && e.ctimeMs === st.ctimeMs;
}

function isDirEntry(v: unknown): v is DirEntry {
  const e = v as DirEntry;
  return (
    typeof e === 'object' && e !== null && typeof e.ino === 'number' && typeof e.mtimeMs === 'number' && typeof e.ctimeMs === 'number' && Array.isArray(e.runs)
  );
}

/** One log directory's full segments as runs, and its highest segment's file. */
function listDir(dir: string): { runs: WalRun[]; newest?: string } | undefined {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // pruned meanwhile
    throw err;
  }
  const byName = new Map<string, string>();
  for (const f of files) {
    if (f.startsWith('.') || f === CHECKSUMS_FILE) continue;
    const name = f.slice(0, f.length - extensionFor(compressionOfFile(f)).length);
    if (isSegmentName(name)) byName.set(name, f);
  }
  const names = [...byName.keys()].sort();
  const top = names[names.length - 1];
  return top === undefined ? { runs: [] } : { runs: runsOf(names), newest: byName.get(top)! };
}

/** The archive's overview; one stat per log directory, a readdir only for those that changed. */
export async function readWalOverview(catalog: string, server: string, opts: OverviewOptions = {}): Promise<WalOverview> {
  // An object store has no directories to stat (the index below is the local file system's
  // shortcut): it is listed as every writer lists it, else status and list saw no WAL at all.
  if (repositoryKindOf(catalog) !== 'posix') {
    const { listArchivedWal } = await import('./wal-archive.js');
    return overviewOf(await listArchivedWal(catalog, server));
  }
  const root = walRoot(catalog, server);
  const now = opts.nowMs ?? Date.now;
  let rootSt: Stats | undefined;
  let top: Dirent[];
  try {
    rootSt = statOf(root);
    if (rootSt === undefined) return { runs: [], count: 0 };
    top = readdirSync(root, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { runs: [], count: 0 };
    throw new PgbkError('CATALOG', `cannot list the WAL archive: ${(err as Error).message}`, { server, path: root });
  }
  const indexName = `wal-${sha256Hex(Buffer.from(root)).slice(0, 24)}.json`;
  const cached = opts.cacheDir === undefined ? undefined : (readCacheJson(opts.cacheDir, indexName) as WalIndex | undefined);
  const usable = cached?.version === INDEX_VERSION && cached.root === root && cached.rootIno === rootSt.ino && typeof cached.dirs === 'object';
  const old = usable ? cached.dirs : {};

  const dirs: Record<string, DirEntry> = {};
  let changed = !usable;
  const parts: WalRun[][] = [];
  let newest: { name: string; file: string } | undefined;
  const logDirs = top.filter((e) => e.isDirectory() && /^[0-9A-F]{16}$/.test(e.name)).map((e) => e.name);
  for (const name of logDirs) {
    const dir = path.join(root, name);
    const before = statOf(dir);
    if (before === undefined) continue;
    const known = old[name];
    let entry: Pick<DirEntry, 'runs' | 'newest'>;
    if (isDirEntry(known) && sameIdentity(known, before)) {
      entry = known;
      dirs[name] = known;
    } else {
      const listedAt = now();
      const listed = listDir(dir);
      if (listed === undefined) continue;
      entry = listed;
      changed = true;
      const after = statOf(dir);
      const settled = after !== undefined && after.ctimeMs === before.ctimeMs && after.mtimeMs === before.mtimeMs;
      if (settled && before.ctimeMs < listedAt - RACY_MARGIN_MS) {
        dirs[name] = { ino: before.ino, mtimeMs: before.mtimeMs, ctimeMs: before.ctimeMs, ...listed };
      }
    }
    parts.push([...entry.runs]);
    const last = entry.runs[entry.runs.length - 1];
    if (last !== undefined && entry.newest !== undefined) {
      const lastName = runName(last.prefix, last.seg + last.count - 1);
      if (newest === undefined || lastName > newest.name) newest = { name: lastName, file: path.join(name, entry.newest) };
    }
  }
  if (!changed && Object.keys(old).some((k) => dirs[k] === undefined)) changed = true;
  if (changed && opts.cacheDir !== undefined) {
    const index: WalIndex = { version: INDEX_VERSION, root, rootIno: rootSt.ino, dirs };
    writeCacheJson(opts.cacheDir, indexName, index);
  }

  const runs = mergeRuns(parts);
  let count = 0;
  for (const r of runs) count += r.count;
  let newestMtime: string | undefined;
  if (newest !== undefined) {
    try {
      // As listArchivedWal says it (Node's own ms rounding of the time), so both views agree.
      newestMtime = statSync(path.join(root, newest.file)).mtime.toISOString();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // pruned meanwhile
    }
  }
  return newestMtime === undefined ? { runs, count } : { runs, count, newestMtime };
}
