/**
 * The backup records `list` and `status` show, from a per-user index (lib/user-cache.ts) when the
 * catalog is a local directory (issue 13 item 5: at 200 backups, reading and validating every
 * backup.json was the largest part of these commands after Node's own start).
 *
 * An entry keeps the parsed record of one backup.json under that file's identity: inode, size,
 * mtime and ctime. backup.json is only ever replaced by a rename (catalog/backups.ts through the
 * posix driver), which gives it a new inode and ctime, and nothing can set a ctime back, so an
 * unchanged identity means unchanged content. Racy case (as catalog/wal-overview.ts): a file whose
 * ctime is less than RACY_MARGIN_MS before it was read is never indexed, only read each time. The
 * index also names the compiled parser it was filled by: another pgbk build parses afresh.
 *
 * Anything out of the ordinary (an unreadable or invalid backup.json, a directory the OS will not
 * list, an object-storage catalog, PGBK_NO_CACHE=1) takes the ordinary path,
 * readBackupsWithProblems, so problems are reported exactly as before. Like the WAL index, this is
 * only a shortcut for the read commands: the planner and every writer read the catalog itself.
 */

import { type Dirent, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { type BackupProblem, readBackupsWithProblems, unreadableBackupsError } from '../catalog/backups.js';
import { backupsDir, isBackupId } from '../catalog/layout.js';
import { repositoryKindOf } from '../catalog/open.js';
import { RACY_MARGIN_MS } from '../catalog/wal-overview.js';
import { sha256Hex } from '../lib/checksum.js';
import { readCacheJson, writeCacheJson } from '../lib/user-cache.js';
import { parseBackupRecord } from '../model/parse-backup-record.js';
import type { BackupRecord } from '../model/types.js';

const INDEX_VERSION = 1;

interface Entry {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly record: BackupRecord;
}

interface BackupIndex {
  readonly version: number;
  readonly dir: string;
  readonly parser: string;
  readonly entries: Readonly<Record<string, Entry>>;
}

export interface ReadBackupsResult {
  readonly backups: readonly BackupRecord[];
  readonly problems: readonly BackupProblem[];
}

export interface ReadCacheOptions {
  /** The per-user cache directory (cli/wal-index.ts indexOptions); undefined: no index. */
  readonly cacheDir?: string;
  /** The clock, for the racy margin (tests). */
  readonly nowMs?: () => number;
}

/** The compiled record parser, by file identity: a different build must not trust our entries. */
function parserIdentity(): string {
  const file = fileURLToPath(new URL('../model/parse-backup-record.js', import.meta.url));
  try {
    const st = statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return '-';
  }
}

function sameIdentity(e: Entry | undefined, st: Stats): e is Entry {
  return e !== undefined && e.ino === st.ino && e.size === st.size && e.mtimeMs === st.mtimeMs && e.ctimeMs === st.ctimeMs && typeof e.record === 'object';
}

/** What readBackupsWithProblems says, read through the index where the catalog allows it. */
export async function readBackupsForView(catalog: string, server: string, opts: ReadCacheOptions = {}): Promise<ReadBackupsResult> {
  if (opts.cacheDir === undefined || repositoryKindOf(catalog) !== 'posix') return readBackupsWithProblems(catalog, server);
  const fast = readThroughIndex(catalog, server, opts.cacheDir, opts.nowMs ?? Date.now);
  return fast ?? readBackupsWithProblems(catalog, server);
}

/** readBackups through the index: a backup the OS refuses to read is an error, not a gap. */
export async function readBackupsStrictForView(catalog: string, server: string, opts: ReadCacheOptions = {}): Promise<readonly BackupRecord[]> {
  const { backups, problems } = await readBackupsForView(catalog, server, opts);
  const err = unreadableBackupsError(server, problems);
  if (err !== undefined) throw err;
  return backups;
}

/** The records through the index, or undefined when anything needs the ordinary path's reporting. */
function readThroughIndex(catalog: string, server: string, cacheDir: string, now: () => number): ReadBackupsResult | undefined {
  const dir = backupsDir(catalog, server);
  let listing: Dirent[];
  try {
    listing = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { backups: [], problems: [] };
    return undefined;
  }
  // As the posix driver lists backups: directories with a backup id for a name (dot-names are in flight).
  const ids = listing
    .filter((e) => e.isDirectory() && isBackupId(e.name))
    .map((e) => e.name)
    .sort();
  const indexName = `backups-${sha256Hex(Buffer.from(dir)).slice(0, 24)}.json`;
  const parser = parserIdentity();
  const cached = readCacheJson(cacheDir, indexName) as BackupIndex | undefined;
  const usable =
    cached?.version === INDEX_VERSION && cached.dir === dir && cached.parser === parser && typeof cached.entries === 'object' && cached.entries !== null;
  const old = usable ? cached.entries : {};
  const entries: Record<string, Entry> = {};
  const backups: BackupRecord[] = [];
  let changed = !usable;
  for (const id of ids) {
    const file = path.join(dir, id, 'backup.json');
    try {
      const st = statSync(file);
      const known = old[id];
      if (sameIdentity(known, st)) {
        entries[id] = known;
        backups.push(known.record);
        continue;
      }
      changed = true;
      const readAt = now();
      const record = parseBackupRecord(readFileSync(file, 'utf8'), { id, server });
      backups.push(record);
      const after = statSync(file);
      const settled = after.ino === st.ino && after.mtimeMs === st.mtimeMs && after.ctimeMs === st.ctimeMs && after.size === st.size;
      if (settled && st.ctimeMs < readAt - RACY_MARGIN_MS) {
        entries[id] = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, record };
      }
    } catch {
      // Missing, unreadable or invalid: the ordinary path says which and how (BackupProblem).
      return undefined;
    }
  }
  if (changed || Object.keys(old).length !== Object.keys(entries).length) {
    writeCacheJson(cacheDir, indexName, { version: INDEX_VERSION, dir, parser, entries } satisfies BackupIndex);
  }
  return { backups, problems: [] };
}
