/**
 * What an `ssh` backup copies: a `find` listing of the data directory (and of each tablespace)
 * taken on the database host after pg_backup_start, minus what pg_basebackup leaves out
 * (PostgreSQL 15 src/backend/backup/basebackup.c: excludeDirContents, excludeFiles, temp files,
 * unlogged relations' main forks). Pure apart from the `find` command line it builds.
 */

import type { FileType } from '../../transport/transport.js';

export interface ListedEntry {
  /** Path relative to the listed root, '/'-separated. */
  readonly rel: string;
  readonly type: FileType;
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
  /** Numeric owner on the database host. */
  readonly uid: number;
  readonly gid: number;
  /** Symlink target (symlinks only). */
  readonly target?: string;
}

/** `find` arguments listing everything under root, one NUL-terminated record per entry. */
export function findArgs(root: string): string[] {
  return ['find', '-P', root, '-mindepth', '1', '-printf', '%y\\t%s\\t%T@\\t%m\\t%U\\t%G\\t%l\\t%P\\0'];
}

const TYPES: Readonly<Record<string, FileType>> = { f: 'file', d: 'dir', l: 'symlink' };

export function parseFindListing(out: Buffer): ListedEntry[] {
  const entries: ListedEntry[] = [];
  for (const rec of out.toString('utf8').split('\0')) {
    if (rec === '') continue;
    const parts = rec.split('\t');
    if (parts.length < 8) continue;
    const [y, size, mtime, mode, uid, gid, target] = parts;
    const rel = parts.slice(7).join('\t');
    const type = TYPES[y ?? ''] ?? 'other';
    entries.push({
      rel,
      type,
      size: Number(size),
      mtimeMs: Math.round(Number(mtime) * 1000),
      mode: parseInt(mode ?? '0', 8),
      uid: Number(uid),
      gid: Number(gid),
      ...(type === 'symlink' ? { target: target ?? '' } : {}),
    });
  }
  return entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** Directories whose contents are not backed up (the directory itself is, empty). */
const EXCLUDE_DIR_CONTENTS: readonly string[] = [
  'pg_wal',
  'pg_stat_tmp',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_subtrans',
];

/** Top-level files never backed up (recreated, or written from pg_backup_stop's result). */
const EXCLUDE_FILES: ReadonlySet<string> = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'postgresql.auto.conf.tmp',
  'current_logfiles',
  'current_logfiles.tmp',
  'backup_label',
  'tablespace_map',
  'backup_manifest',
]);

const RELFILE_RE = /^(\d+)(?:_(fsm|vm|init))?(?:\.\d+)?$/;

/** Relation directories (base/<db>, a tablespace's PG_15_x/<db>) whose unlogged main forks are skipped. */
function unloggedSkips(entries: readonly ListedEntry[]): Set<string> {
  const initForks = new Set<string>();
  for (const e of entries) {
    const slash = e.rel.lastIndexOf('/');
    const m = RELFILE_RE.exec(e.rel.slice(slash + 1));
    if (e.type === 'file' && m?.[2] === 'init') initForks.add(`${e.rel.slice(0, slash + 1)}${m[1]}`);
  }
  const skip = new Set<string>();
  if (initForks.size === 0) return skip;
  for (const e of entries) {
    const slash = e.rel.lastIndexOf('/');
    const m = RELFILE_RE.exec(e.rel.slice(slash + 1));
    if (m === null || m[2] === 'init') continue;
    if (initForks.has(`${e.rel.slice(0, slash + 1)}${m[1]}`)) skip.add(e.rel);
  }
  return skip;
}

/**
 * The entries a backup keeps. For the data directory (isPgdata) the directory exclusions, file
 * exclusions and pg_tblspc links apply (tablespaces are listed and stored separately, and
 * tablespace_map from pg_backup_stop says where they go); everywhere temp files and unlogged
 * relations' non-init forks are dropped.
 */
export function selectForBackup(entries: readonly ListedEntry[], isPgdata: boolean): ListedEntry[] {
  const skipUnlogged = unloggedSkips(entries);
  return entries.filter((e) => {
    const parts = e.rel.split('/');
    const base = parts[parts.length - 1] ?? '';
    if (parts.some((p) => p.startsWith('pgsql_tmp'))) return false;
    if (base.startsWith('pg_internal.init')) return false;
    if (skipUnlogged.has(e.rel)) return false;
    if (!isPgdata) return true;
    if (parts.length === 1 && EXCLUDE_FILES.has(base)) return false;
    const top = parts[0] ?? '';
    if (parts.length > 1 && EXCLUDE_DIR_CONTENTS.includes(top)) {
      // pg_wal/archive_status must exist for PostgreSQL to start; its contents not.
      return top === 'pg_wal' && parts.length === 2 && base === 'archive_status' && e.type === 'dir';
    }
    if (top === 'pg_tblspc' && parts.length > 1) return false;
    return true;
  });
}
