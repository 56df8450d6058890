/**
 * The stored files of one backup (base.tar[.zst|.gz], <oid>.tar…, backup_manifest; the `ssh`
 * method's files.json), as restore, verify and the next backup read them: the backup's directory
 * in a local catalog, or its objects in a catalog on object storage, read through the repository
 * port. It lives in catalog/ so that both backup/ (the next backup reads the previous one's file
 * list) and restore/ may depend on it; restore/stored-layout.ts is the restore-side view on top.
 *
 * From object storage a tar is read as consecutive ranged GETs, several in flight ahead of the one
 * being unpacked (prefetch), so the restore is not paced by one request's round trips; memory stays
 * at `ahead` × `chunkBytes` whatever the backup's size. The stored bytes are checked against
 * backup.json's sha256 by the caller (extract.ts), as for local files.
 */

import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { backupDir, catalogKeys } from './layout.js';
import { repositoryKindOf, repositoryOf } from './open.js';
import type { Repository } from './repository.js';
import { PgbkError } from '../errors.js';
import { exposedGc } from '../lib/v8-gc.js';

export interface StoredSource {
  /** Where a stored file is, for messages. */
  where(name: string): string;
  /** The names of the files stored for the backup (not backup.json's siblings' contents). */
  names(): Promise<string[]>;
  size(name: string): Promise<number>;
  /** The stored bytes of one file, in order. */
  open(name: string): AsyncIterable<Buffer>;
  /** open(), the reading started now (from object storage: the GETs sent) for a consumer to come; `size` as size() said. */
  start(name: string, size: number): StartedRead;
  /** A local file with the stored bytes of a small file (backup_manifest for pg_verifybackup). */
  localFile(name: string): Promise<{ readonly path: string; dispose(): Promise<void> }>;
  /** The stored file itself when it is a file on this host (a local catalog), for programs to read directly. */
  localPath?(name: string): string;
}

export interface PrefetchOptions {
  readonly chunkBytes?: number;
  readonly ahead?: number;
}

/**
 * 3 × 4 MiB: at most 12 MiB of the object in memory ahead of the consumer. Each range ahead is read
 * whole as soon as it is asked for (no paused responses, which a server or the client's inactivity
 * timeout could drop while a slow consumer works through the ranges before it). 4 × 8 MiB held
 * all but 5 MB of pgbench -s 50's 37 MB base.tar.zst, since the link outruns zstd | tar: fresh
 * memory to fault in on every restore, for nothing (Session 16).
 */
const CHUNK = 4 * 1024 * 1024;
const AHEAD = 3;

/**
 * One range of the object being fetched: its bytes as they arrive, copied into `slab` (one of the
 * read's few range-sized buffers, reused from range to range), until it ends or fails.
 */
interface Part {
  readonly offset: number;
  readonly length: number;
  readonly slab: Buffer;
  /** Bytes of the range in `slab` so far. */
  received: number;
  /** Of them, handed to the consumer. */
  taken: number;
  done: boolean;
  error: unknown;
  body: Readable | undefined;
  wake: (() => void) | undefined;
}

/** At most this many bytes are yielded at once (the pipe to the decompressor takes 1 MiB). */
const YIELD_BYTES = 1 << 20;

/**
 * The part's bytes not yet handed out, up to YIELD_BYTES, as a Buffer of their own (the slab is
 * reused for a later range, whatever the consumer does with what it was given).
 */
function takeBytes(part: Part): Buffer {
  const n = Math.min(part.received - part.taken, YIELD_BYTES);
  const out = Buffer.allocUnsafe(n);
  part.slab.copy(out, 0, part.taken, part.taken + n);
  part.taken += n;
  return out;
}

/** A read already under way before its consumer comes (restore: during the checks that precede unpacking). */
export interface StartedRead {
  /** The bytes, in order; iterated once. */
  readonly bytes: AsyncGenerator<Buffer>;
  /** Not wanted after all (the restore was refused or failed first): stop fetching, let go of what came. */
  cancel(): void;
}

/**
 * The object as consecutive ranges, up to `ahead` GETs in flight from the call on, yielded in order.
 * The range being consumed is yielded as its bytes arrive, not once it is complete: with all
 * `ahead` responses sharing the link, waiting for the first one whole kept the decompressor idle
 * for ~0.1-0.25 s at the start of a restore (8 MiB at a quarter of the bandwidth). The ranges ahead
 * are read into memory meanwhile, so memory stays at `ahead` × `chunkBytes`, however long the
 * consumer takes to come.
 *
 * Each response piece (a TLS record) is copied into its range's slab as it arrives and is garbage at
 * once; the consumer gets fresh copies of ≤ 1 MiB, garbage once it has written them. Both die young,
 * which a young-generation collection frees (unpack.ts runs one every few MiB). Kept as they came,
 * the pieces of the ranges ahead lived through several such collections, were moved to the old
 * generation and stayed there until a full collection: the S3 restore of pgbench -s 50 grew to
 * 40–60 MB of dead Buffers (Session 16). The slabs are allocated once per read and reused.
 *
 * A range that comes back short or long, or fails, fails the read when it is reached (the caller's
 * sha256 of the whole object stays the end-to-end check).
 */
export function startRangedRead(repo: Repository, key: string, size: number, opts: PrefetchOptions = {}): StartedRead {
  const chunk = opts.chunkBytes ?? CHUNK;
  const ahead = opts.ahead ?? AHEAD;
  const parts: Part[] = [];
  let next = 0;
  let stopped = false;
  const where = repo.where(key);
  const gc = exposedGc();
  const wake = (part: Part): void => {
    const w = part.wake;
    part.wake = undefined;
    w?.();
  };
  const fetchPart = async (part: Part): Promise<void> => {
    try {
      const body = await repo.read(key, { offset: part.offset, length: part.length });
      if (body === undefined) throw new PgbkError('CATALOG', `${where} vanished while it was read`, { path: where });
      part.body = body;
      if (stopped) body.destroy();
      let long = false;
      for await (const c of body) {
        const b = c as Buffer;
        if (part.received + b.length > part.length) {
          long = true;
          break;
        }
        b.copy(part.slab, part.received);
        part.received += b.length;
        wake(part);
      }
      if (long || part.received !== part.length) {
        const last = part.offset + part.length - 1;
        const got = long ? `more than ${part.length}` : String(part.received);
        throw new PgbkError('CATALOG', `${where}: bytes ${part.offset}-${last} came back as ${got} bytes`, { path: where });
      }
      // The range's response pieces are all garbage now: freed before the next range's arrive
      // (during a restore's checks nothing else would collect them until the unpack's first).
      gc?.({ type: 'minor' });
    } catch (err) {
      part.error = err;
    } finally {
      part.done = true;
      wake(part);
    }
  };
  // Slabs of finished ranges, for the next ones: at most `ahead` are ever allocated.
  const spare: Buffer[] = [];
  const fill = (): void => {
    while (!stopped && parts.length < ahead && next < size) {
      const length = Math.min(chunk, size - next);
      const slab = spare.pop() ?? Buffer.allocUnsafe(Math.min(chunk, size));
      const part: Part = { offset: next, length, slab, received: 0, taken: 0, done: false, error: undefined, body: undefined, wake: undefined };
      void fetchPart(part);
      parts.push(part);
      next += length;
    }
  };
  const stop = (): void => {
    stopped = true;
    spare.length = 0;
    for (const p of parts) {
      p.body?.destroy();
      wake(p);
    }
  };
  async function* bytes(): AsyncGenerator<Buffer> {
    try {
      const cancelled = (): PgbkError => new PgbkError('CATALOG', `the read of ${where} was cancelled`, { path: where });
      while (parts.length > 0) {
        const part = parts[0]!;
        while (part.taken < part.received || !part.done) {
          if (stopped) throw cancelled();
          if (part.taken < part.received) yield takeBytes(part);
          else await new Promise<void>((resolve) => (part.wake = resolve));
        }
        if (stopped) throw cancelled();
        if (part.error !== undefined) throw part.error;
        parts.shift();
        spare.push(part.slab);
        fill();
      }
    } finally {
      // The reader stopped early (or a range failed): let go of the responses still being read.
      stop();
    }
  }
  fill();
  return { bytes: bytes(), cancel: stop };
}

/** startRangedRead, its GETs sent when the first bytes are asked for. */
export async function* prefetchingRead(repo: Repository, key: string, size: number, opts: PrefetchOptions = {}): AsyncGenerator<Buffer> {
  yield* startRangedRead(repo, key, size, opts).bytes;
}

/** A local file's error as the repository source reports a missing or unreadable object. */
function localError(file: string, err: unknown): PgbkError {
  const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
  return new PgbkError('CATALOG', missing ? `${file} is missing` : `cannot read ${file}: ${(err as Error).message}`, { path: file, cause: err });
}

async function* readLocal(file: string): AsyncGenerator<Buffer> {
  try {
    for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) yield c as Buffer;
  } catch (err) {
    throw localError(file, err);
  }
}

/** The stored files of a backup directory on this host. */
export function directorySource(dir: string): StoredSource {
  return {
    where: (name) => path.join(dir, name),
    names: () => readdir(dir),
    // Errors as from object storage: a CATALOG error naming the file (not a bare ENOENT).
    size: async (name) => (await stat(path.join(dir, name)).catch((err: unknown) => Promise.reject(localError(path.join(dir, name), err)))).size,
    open: (name) => readLocal(path.join(dir, name)),
    // A local file needs no head start: read when asked.
    start: (name) => {
      const bytes = readLocal(path.join(dir, name));
      return { bytes, cancel: () => void bytes.return(undefined) };
    },
    localFile: async (name) => ({ path: path.join(dir, name), dispose: async () => undefined }),
    localPath: (name) => path.join(dir, name),
  };
}

function repositorySource(repo: Repository, prefix: string, prefetch: PrefetchOptions): StoredSource {
  const key = (name: string): string => `${prefix}${name}`;
  return {
    where: (name) => repo.where(key(name)),
    async names() {
      const out: string[] = [];
      for await (const e of repo.listNames(prefix)) if (e.kind === 'object') out.push(e.key.slice(prefix.length));
      return out;
    },
    async size(name) {
      const info = await repo.stat(key(name));
      if (info === undefined) throw new PgbkError('CATALOG', `${repo.where(key(name))} is missing`, { path: repo.where(key(name)) });
      return info.size;
    },
    async *open(name) {
      yield* prefetchingRead(repo, key(name), await this.size(name), prefetch);
    },
    start: (name, size) => startRangedRead(repo, key(name), size, prefetch),
    async localFile(name) {
      const bytes = await repo.get(key(name));
      const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-restore-'));
      const file = path.join(dir, name);
      // Absent: an empty file, which the caller's sha256 check then refuses naming the object.
      await writeFile(file, bytes ?? Buffer.alloc(0), { mode: 0o600 });
      return { path: file, dispose: () => rm(dir, { recursive: true, force: true }) };
    },
  };
}

/** The stored files of backup `id`, wherever the catalog keeps them. */
export async function storedSource(catalog: string, server: string, id: string, prefetch: PrefetchOptions = {}): Promise<StoredSource> {
  if (repositoryKindOf(catalog) === 'posix') return directorySource(backupDir(catalog, server, id));
  return repositorySource(await repositoryOf(catalog), catalogKeys.backup(server, id), prefetch);
}
