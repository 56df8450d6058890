/**
 * Names in the archive's log directories: the listing primitives listArchivedWal and pruning use,
 * and ArchiveListing, the wal-push worker's short-lived cache of them (absence hints before a put).
 */

import { extensionFor, compressionOfFile } from './compress.js';
import { catalogKeys } from './layout.js';
import { repositoryOf, type CatalogRef } from './open.js';
import type { Repository } from './repository.js';
import { isSegmentName } from '../pg/wal-name.js';

/** How long one listing of a log directory answers ArchiveListing.isAbsent. */
export const LISTING_TTL_MS = 2000;

/**
 * Which segments a server's log directories hold, from one listing per directory reused for up to
 * `ttlMs`: a worker draining a backlog into an object store asks it instead of making one HEAD
 * per compression kind before each PUT (3 round trips per segment). Only absence is used, as a
 * hint (ArchiveOptions.knownAbsent): a name listed present, or a directory that could not be
 * listed, goes through the usual lookup, and the put is put-if-absent either way — a copy stored
 * after the listing answers 'exists' and is compared, never overwritten.
 */
export class ArchiveListing {
  private readonly dirs = new Map<string, { readonly at: number; readonly names: Promise<ReadonlySet<string>> }>();
  private readonly stored = new Set<string>();

  constructor(
    private readonly catalog: CatalogRef,
    private readonly server: string,
    private readonly ttlMs: number = LISTING_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a listing of `name`'s directory at most ttlMs old holds no copy of it (false: unknown or present). */
  async isAbsent(name: string): Promise<boolean> {
    if (!isSegmentName(name) || this.stored.has(name)) return false;
    const dir = catalogKeys.walDirFor(this.server, name);
    const t = this.now();
    let entry = this.dirs.get(dir);
    if (entry === undefined || t - entry.at > this.ttlMs) {
      // Its time is when it started: what it shows is at least that fresh.
      const names = repositoryOf(this.catalog)
        .then((repo) => objectNames(repo, dir))
        .then((files) => new Set(files.map(stripExtension)));
      entry = { at: t, names };
      for (const [d, e] of this.dirs) if (t - e.at > this.ttlMs) this.dirs.delete(d);
      this.dirs.set(dir, entry);
    }
    try {
      return !(await entry.names).has(name);
    } catch {
      if (this.dirs.get(dir) === entry) this.dirs.delete(dir);
      return false;
    }
  }

  /** `name` is archived now (by us): it is never reported absent again. */
  noteStored(name: string): void {
    if (!isSegmentName(name)) return;
    this.stored.add(name);
    // Bounded: names older than a few directories' worth are no longer asked about.
    if (this.stored.size > 4096) this.stored.delete(this.stored.values().next().value as string);
  }
}

/** A stored file's name without its compression extension (the WAL name it holds). */
export function stripExtension(fileName: string): string {
  return fileName.slice(0, fileName.length - extensionFor(compressionOfFile(fileName)).length);
}

/** The names (last key segment) of the objects directly under `prefix`. */
export async function objectNames(repo: Repository, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of repo.listNames(prefix)) if (e.kind === 'object') names.push(e.key.slice(prefix.length));
  return names;
}
