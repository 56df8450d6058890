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

export interface StoredSource {
  /** Where a stored file is, for messages. */
  where(name: string): string;
  /** The names of the files stored for the backup (not backup.json's siblings' contents). */
  names(): Promise<string[]>;
  size(name: string): Promise<number>;
  /** The stored bytes of one file, in order. */
  open(name: string): AsyncIterable<Buffer>;
  /** A local file with the stored bytes of a small file (backup_manifest for pg_verifybackup). */
  localFile(name: string): Promise<{ readonly path: string; dispose(): Promise<void> }>;
}

export interface PrefetchOptions {
  readonly chunkBytes?: number;
  readonly ahead?: number;
}

const CHUNK = 8 * 1024 * 1024;
const AHEAD = 4;

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The object as consecutive ranges, up to `ahead` GETs in flight, yielded in order. */
export async function* prefetchingRead(repo: Repository, key: string, size: number, opts: PrefetchOptions = {}): AsyncGenerator<Buffer> {
  const chunk = opts.chunkBytes ?? CHUNK;
  const ahead = opts.ahead ?? AHEAD;
  const queue: Promise<Buffer>[] = [];
  let next = 0;
  const fetchRange = async (offset: number, length: number): Promise<Buffer> => {
    const r = await repo.read(key, { offset, length });
    if (r === undefined) throw new PgbkError('CATALOG', `${repo.where(key)} vanished while it was read`, { path: repo.where(key) });
    const buf = await readAll(r);
    if (buf.length !== length) {
      throw new PgbkError('CATALOG', `${repo.where(key)}: bytes ${offset}-${offset + length - 1} came back as ${buf.length} bytes`, { path: repo.where(key) });
    }
    return buf;
  };
  const fill = (): void => {
    while (queue.length < ahead && next < size) {
      const length = Math.min(chunk, size - next);
      const p = fetchRange(next, length);
      // Awaited in order below; one failing while an earlier one is awaited is not "unhandled".
      p.catch(() => undefined);
      queue.push(p);
      next += length;
    }
  };
  fill();
  while (queue.length > 0) {
    const buf = await queue.shift()!;
    fill();
    yield buf;
  }
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
    localFile: async (name) => ({ path: path.join(dir, name), dispose: async () => undefined }),
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
