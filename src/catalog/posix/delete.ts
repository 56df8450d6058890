/**
 * Deletion for the posix driver. Single objects: unlink, fsync the directory, drop their
 * SHA256SUMS lines, and optionally the directory left empty (pruned WAL log directories).
 * Trees: renamed out of sight first, as backups/.deleting-<id> always was.
 */

import { readdir, realpath, rename, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../../lib/atomic.js';
import { CHECKSUMS_FILE, readChecksums, removeChecksums } from './checksums.js';
import { errnoOf, failure, isAbsent, pathOf } from './fs-util.js';

/** Remove a directory holding nothing but an empty SHA256SUMS; a concurrent writer wins. */
async function removeIfEmpty(dir: string): Promise<void> {
  const entries = await readdir(dir);
  if (entries.some((e) => e !== CHECKSUMS_FILE)) return;
  if ((await readChecksums(dir)).size > 0) return;
  try {
    await unlink(path.join(dir, CHECKSUMS_FILE));
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
  try {
    await rmdir(dir);
    await fsyncDir(path.dirname(dir));
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
  }
}

export async function deleteFiles(root: string, keys: readonly string[], removeEmptyParents: boolean): Promise<void> {
  const byDir = new Map<string, string[]>();
  for (const key of keys) {
    const file = pathOf(root, key);
    const list = byDir.get(path.dirname(file)) ?? [];
    list.push(path.basename(file));
    byDir.set(path.dirname(file), list);
  }
  for (const [dir, names] of byDir) {
    const removed = new Set<string>();
    for (const name of names) {
      try {
        await unlink(path.join(dir, name));
        removed.add(name);
      } catch (err) {
        if (!isAbsent(err)) throw failure('delete', path.join(dir, name), err);
      }
    }
    if (removed.size === 0) continue;
    try {
      await fsyncDir(dir);
      await removeChecksums(dir, removed);
      if (removeEmptyParents && dir !== root) await removeIfEmpty(dir);
    } catch (err) {
      throw failure('delete in', dir, err);
    }
  }
}

const DELETING_PREFIX = '.deleting-';

/** Finish deletions a crash interrupted in `parent`; true when something was removed. */
async function removeDeletingLeftovers(parent: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch (err) {
    if (isAbsent(err)) return false;
    throw err;
  }
  const leftovers = names.filter((n) => n.startsWith(DELETING_PREFIX));
  for (const name of leftovers) await rm(path.join(parent, name), { recursive: true, force: true });
  if (leftovers.length > 0) await fsyncDir(parent);
  return leftovers.length > 0;
}

/** Delete the directory of `treeKey` (a checked key, without the trailing '/'). */
export async function deleteTreeIn(root: string, treeKey: string): Promise<void> {
  const dir = pathOf(root, treeKey);
  const parent = path.dirname(dir);
  try {
    // Only a parent that is really inside the root is touched (a symlink could point elsewhere).
    let realParent: string;
    try {
      realParent = await realpath(parent);
    } catch (err) {
      if (isAbsent(err)) return;
      throw err;
    }
    if (realParent !== root && !realParent.startsWith(root + path.sep)) {
      throw new Error(`${parent} resolves to ${realParent}, outside the repository ${root}`);
    }
    // A leftover .deleting-<name> from a crash would make the rename fail.
    await removeDeletingLeftovers(parent);
    try {
      await rename(dir, path.join(parent, `${DELETING_PREFIX}${path.basename(dir)}`));
      await fsyncDir(parent);
    } catch (err) {
      if (!isAbsent(err)) throw err;
    }
    await removeDeletingLeftovers(parent);
  } catch (err) {
    throw failure('delete', dir, err);
  }
}
