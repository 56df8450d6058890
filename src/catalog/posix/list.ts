/**
 * Listing for the posix driver: a directory walk that yields what an S3 listing of the same keys
 * would (repository.ts ListOptions), in the same byte order. Dot-names (in flight), SHA256SUMS
 * (the driver's own bookkeeping) and anything that is neither a regular file nor a directory are
 * not objects. Metadata is fetched a page of 1,000 names at a time, a few stats in flight.
 */

import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { mapLimited } from '../../lib/map-limited.js';
import type { ListEntry, ListOptions, NameEntry } from '../repository.js';
import { compareKeys } from '../repository-key.js';
import { CHECKSUMS_FILE } from './checksums.js';
import { failure, isAbsent, pathOf } from './fs-util.js';

const PAGE = 1000;
const STAT_CONCURRENCY = 16;

interface Child {
  readonly key: string; // directories end in '/'
  readonly isDir: boolean;
}

/** The sorted children of the directory `dirKey` ('' or ending in '/') whose names start with `namePrefix`. */
async function children(root: string, dirKey: string, namePrefix: string): Promise<Child[]> {
  const dir = dirKey === '' ? root : pathOf(root, dirKey.slice(0, -1));
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isAbsent(err)) return []; // nothing under this prefix (or it was removed meanwhile)
    throw failure('list', dir, err);
  }
  const out: Child[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.') || !e.name.startsWith(namePrefix)) continue;
    if (e.isDirectory()) out.push({ key: `${dirKey}${e.name}/`, isDir: true });
    else if (e.isFile() && e.name !== CHECKSUMS_FILE) out.push({ key: dirKey + e.name, isDir: false });
  }
  // A directory sorts as its name plus '/', so a recursive walk yields keys in byte order.
  return out.sort((a, b) => compareKeys(a.key, b.key));
}

/** Keys under `prefix` in order; directories as prefixes (one level) or walked into (recursive). */
async function* walk(root: string, prefix: string, recursive: boolean): AsyncGenerator<NameEntry> {
  const cut = prefix.lastIndexOf('/') + 1;
  const stack: { readonly items: Child[]; at: number }[] = [{ items: await children(root, prefix.slice(0, cut), prefix.slice(cut)), at: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const next = top.items[top.at++];
    if (next === undefined) {
      stack.pop();
      continue;
    }
    if (!next.isDir) yield { kind: 'object', key: next.key };
    else if (!recursive) yield { kind: 'prefix', key: next.key };
    else stack.push({ items: await children(root, next.key, ''), at: 0 });
  }
}

export function listNamesIn(root: string, prefix: string, opts: ListOptions = {}): AsyncIterable<NameEntry> {
  return walk(root, prefix, opts.recursive === true);
}

async function withMetadata(root: string, page: readonly NameEntry[]): Promise<(ListEntry | undefined)[]> {
  return mapLimited(page, STAT_CONCURRENCY, async (e): Promise<ListEntry | undefined> => {
    if (e.kind === 'prefix') return { kind: 'prefix', key: e.key };
    const file = pathOf(root, e.key);
    try {
      const st = await stat(file);
      return { kind: 'object', key: e.key, size: st.size, mtime: st.mtime };
    } catch (err) {
      if (isAbsent(err)) return undefined; // deleted since the readdir: not there any more
      throw failure('stat', file, err);
    }
  });
}

export async function* listIn(root: string, prefix: string, opts: ListOptions = {}): AsyncGenerator<ListEntry> {
  let page: NameEntry[] = [];
  for await (const e of walk(root, prefix, opts.recursive === true)) {
    page.push(e);
    if (page.length < PAGE) continue;
    for (const x of await withMetadata(root, page)) if (x !== undefined) yield x;
    page = [];
  }
  for (const x of await withMetadata(root, page)) if (x !== undefined) yield x;
}
