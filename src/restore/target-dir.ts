/**
 * The directory a restore writes into. A restore never mixes with existing files: a non-empty
 * directory is refused unless --force, which deletes its contents first (and says so). A running
 * PostgreSQL's data directory is refused even with --force. The catalog is compared by real path
 * (symbolic links resolved on both sides), so no link leads a restore into it.
 */

import { chmod, lstat, mkdir, readFile, readdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';

export interface DirState {
  readonly path: string;
  /** Where `path` really is: its deepest existing ancestor's real path plus the rest. */
  readonly realPath: string;
  readonly exists: boolean;
  readonly entries: readonly string[];
}

export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The real location of a path that may not exist yet: the real path of its deepest existing
 * ancestor (every symbolic link resolved) joined with the components that do not exist. A dangling
 * symbolic link on the way is refused: mkdir would follow it to a place not checked here.
 */
export async function resolveReal(p: string, flag: string): Promise<string> {
  const abs = path.resolve(p);
  const tail: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      return path.join(await realpath(cur), ...tail.reverse());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PgbkError('USAGE', `${flag} ${abs}: ${(err as Error).message}`);
    }
    const isLink = await lstat(cur).then(
      (st) => st.isSymbolicLink(),
      () => false,
    );
    if (isLink) throw new PgbkError('USAGE', `${flag} ${abs}: ${cur} is a symbolic link to a missing target`);
    const parent = path.dirname(cur);
    if (parent === cur) return path.join(cur, ...tail.reverse());
    tail.push(path.basename(cur));
    cur = parent;
  }
}

/** Refuse a directory that is, holds or lies inside the catalog, comparing real paths. */
export async function refuseCatalogOverlap(abs: string, real: string, catalog: string, flag: string): Promise<void> {
  // A catalog on object storage (s3://…) has no local directory to overlap.
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(catalog)) return;
  const catalogReal = await resolveReal(catalog, 'catalog');
  if (isInside(real, catalogReal) || isInside(catalogReal, real)) {
    const via = real === abs ? '' : ` (really ${real})`;
    throw new PgbkError(
      'USAGE',
      `${flag} ${abs}${via} overlaps the catalog ${catalog}${catalogReal === path.resolve(catalog) ? '' : ` (really ${catalogReal})`}`,
      {
        hint: 'restore outside the catalog: --force there would delete backups and WAL',
      },
    );
  }
}

/** Read-only checks, done before anything is written (and before the backup is marked in use). */
export async function inspectTargetDir(dir: string, force: boolean, catalog: string, flag = '--target-dir'): Promise<DirState> {
  const abs = path.resolve(dir);
  const real = await resolveReal(abs, flag);
  if (abs === path.parse(abs).root || real === path.parse(real).root)
    throw new PgbkError('USAGE', `${flag} ${abs}: refusing to restore into the root directory`);
  await refuseCatalogOverlap(abs, real, catalog, flag);
  let entries: string[];
  try {
    const st = await lstat(abs);
    if (!st.isDirectory()) throw new PgbkError('USAGE', `${flag} ${abs} exists and is not a directory`);
    entries = await readdir(abs);
  } catch (err) {
    if (err instanceof PgbkError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path: abs, realPath: real, exists: false, entries: [] };
    throw new PgbkError('USAGE', `${flag} ${abs}: ${(err as Error).message}`);
  }
  if (entries.length > 0 && !force) {
    throw new PgbkError('USAGE', `${flag} ${abs} is not empty (${entries.length} entries)`, {
      hint: 'choose an empty or new directory, or add --force to DELETE its contents first',
    });
  }
  if (entries.includes('postmaster.pid')) {
    const pid = Number((await readFile(path.join(abs, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
      throw new PgbkError('USAGE', `${flag} ${abs} belongs to a running PostgreSQL (pid ${pid}); stop it first`);
    }
  }
  return { path: abs, realPath: real, exists: true, entries };
}

/** Create the directory (mode 0700, as PostgreSQL requires) or empty it when --force allowed that. */
export async function prepareTargetDir(state: DirState, log: (line: string) => void): Promise<void> {
  if (!state.exists) {
    await mkdir(state.path, { recursive: true, mode: 0o700 });
  } else if (state.entries.length > 0) {
    log(`--force: deleting the ${state.entries.length} existing entries of ${state.path}`);
    for (const e of state.entries) await rm(path.join(state.path, e), { recursive: true, force: true });
  }
  await chmod(state.path, 0o700);
}

/** After a failed restore: leave the directory empty (it was empty or emptied before we began). */
export async function emptyDir(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const e of entries) await rm(path.join(dir, e), { recursive: true, force: true });
}
