/**
 * The posix repository driver: the catalog as a local directory tree, laid out and fsynced exactly
 * as pgbk always stored it (DESIGN.md §4). Keys map one to one onto paths under the root; every
 * key is checked (repository-key.ts) before it becomes a path, and the root is resolved once with
 * realpath, so no key can reach outside it.
 */

import { realpath, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { PgbkError } from '../../errors.js';
import type { Bytes } from '../../lib/atomic.js';
import type {
  CreateOutcome,
  LockAttempt,
  LockHolder,
  LockOptions,
  ListEntry,
  ListOptions,
  NameEntry,
  GetOptions,
  ObjectInfo,
  ObjectWriter,
  PutIfAbsentOptions,
  PutOptions,
  ReadRange,
  Repository,
  WriteOptions,
} from '../repository.js';
import { checkKey, checkPrefix, checkTreePrefix } from '../repository-key.js';
import { pathOf } from './fs-util.js';
import { getFile, readFileRange, statFile } from './read.js';
import { openFileWrite, putFile, putFileIfAbsent } from './write.js';

class PosixRepository implements Repository {
  constructor(private readonly root: string) {}

  private file(key: string): string {
    return pathOf(this.root, checkKey(key));
  }

  where(key: string): string {
    return this.file(key);
  }

  get(key: string, opts?: GetOptions): Promise<Buffer | undefined> {
    return getFile(this.file(key), opts?.into);
  }

  read(key: string, range?: ReadRange): Promise<Readable | undefined> {
    return readFileRange(this.file(key), range);
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return statFile(this.file(key));
  }

  put(key: string, data: Bytes, opts?: PutOptions): Promise<void> {
    return putFile(this.file(key), data, opts);
  }

  putIfAbsent(key: string, data: Bytes, opts?: PutIfAbsentOptions): Promise<CreateOutcome> {
    return putFileIfAbsent(this.file(key), data, opts);
  }

  openWrite(key: string, opts?: WriteOptions): Promise<ObjectWriter> {
    return openFileWrite(key, this.file(key), opts);
  }

  // Listing, deletion and the lock are loaded on first use: the per-segment commands (wal-push,
  // wal-fetch) only stat, get and putIfAbsent, and pay for every module they load.

  async *list(prefix: string, opts?: ListOptions): AsyncIterable<ListEntry> {
    const checked = checkPrefix(prefix);
    yield* (await import('./list.js')).listIn(this.root, checked, opts);
  }

  async *listNames(prefix: string, opts?: ListOptions): AsyncIterable<NameEntry> {
    const checked = checkPrefix(prefix);
    yield* (await import('./list.js')).listNamesIn(this.root, checked, opts);
  }

  async delete(keys: readonly string[], opts: { readonly removeEmptyParents?: boolean } = {}): Promise<void> {
    for (const key of keys) checkKey(key);
    return (await import('./delete.js')).deleteFiles(this.root, keys, opts.removeEmptyParents === true);
  }

  async deleteTree(prefix: string): Promise<void> {
    const tree = checkTreePrefix(prefix).slice(0, -1);
    return (await import('./delete.js')).deleteTreeIn(this.root, tree);
  }

  async tryLock(key: string, holder: LockHolder, _opts: LockOptions): Promise<LockAttempt> {
    const file = this.file(key);
    return (await import('./lock.js')).tryLockFile(file, holder);
  }

  async readLock(key: string): Promise<LockHolder | 'unreadable' | undefined> {
    const file = this.file(key);
    return (await import('./lock.js')).readLockFile(file);
  }
}

/** The repository in directory `root`, which must exist (pgbk never invents a catalog's location). */
export async function openPosixRepository(root: string): Promise<Repository> {
  let real: string;
  try {
    real = await realpath(root);
    if (!(await stat(real)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot open the catalog ${root}: ${(err as Error).message}`, {
      path: root,
      cause: err,
      hint: 'create the directory (owned by the user pgbk runs as), or fix `catalog:` in the configuration',
    });
  }
  return new PosixRepository(real);
}
