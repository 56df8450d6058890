/**
 * Small pieces every posix module shares: key → path inside the root, errors that name the file,
 * and creating missing parent directories durably (a new directory's entry must be fsynced in its
 * parent, or a crash can lose a file whose own fsync succeeded).
 */

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../../errors.js';
import { fsyncDir } from '../../lib/atomic.js';

/** Directories the driver creates: 0750, as catalog/layout.ts creates the server's directories. */
export const DIR_MODE = 0o750;
/** Objects and the lock: 0640 unless the caller asks otherwise (no catalog file is world-readable). */
export const FILE_MODE = 0o640;

/** The absolute path of an already checked key (repository-key.ts) under the real root. */
export function pathOf(root: string, key: string): string {
  return path.join(root, ...key.split('/'));
}

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** ENOENT and ENOTDIR both mean "no such object" for a key (a parent may be a file). */
export function isAbsent(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function failure(op: string, file: string, err: unknown): PgbkError {
  if (err instanceof PgbkError) return err;
  return new PgbkError('CATALOG', `cannot ${op} ${file}: ${(err as Error).message}`, { path: file, cause: err });
}

/**
 * Run `fn`, which creates something in `dir`; when it fails because `dir` is missing, create
 * `dir` (every new level fsynced in its parent, and `dir`'s own entry even when a concurrent
 * writer created it, since that writer's fsync may still be in flight) and run `fn` once more.
 * Trying first keeps the common case — the directory exists — at zero extra system calls.
 */
export async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
  const created = await mkdir(dir, { recursive: true, mode: DIR_MODE });
  const top = created ?? dir;
  for (let d = dir; ; d = path.dirname(d)) {
    await fsyncDir(path.dirname(d));
    if (d === top || path.dirname(d) === d) break;
  }
  return fn();
}
