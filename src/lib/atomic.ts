/**
 * Crash-safe file writes (DESIGN.md §4): a temp file in the same directory → fsync → rename (or
 * link, when the target must never be replaced) → fsync the directory. A crash leaves either the
 * old state or the new one, plus at worst a dot-named temp file that readers ignore.
 */

import { randomBytes } from 'node:crypto';
import { type FileHandle, link, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { withPath } from './free-space.js';

export interface WriteOptions {
  readonly mode?: number;
}

/** A unique dot-name beside `finalPath`; dot-files are "in flight" everywhere in pgbk. */
export function tempPathFor(finalPath: string): string {
  const suffix = `${process.pid}-${randomBytes(6).toString('hex')}`;
  return path.join(path.dirname(finalPath), `.${path.basename(finalPath)}.tmp-${suffix}`);
}

async function fsyncDirNow(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface DirSync {
  readonly promise: Promise<void>;
  started: boolean;
}

/** Per directory: the newest fsync scheduled in this process. */
const dirSyncs = new Map<string, DirSync>();

/**
 * fsync a directory so a rename/link/unlink in it survives a crash. Resolves only after an fsync
 * of `dir` that began after this call. Concurrent callers share one (group commit): while an fsync
 * is running, every new caller joins the single next one, which starts when it ends — the archiver
 * publishing several files at once pays one directory fsync per round, not one per file.
 */
export function fsyncDir(dir: string): Promise<void> {
  const key = path.resolve(dir);
  const last = dirSyncs.get(key);
  if (last !== undefined && !last.started) return last.promise;
  const previous = last === undefined ? Promise.resolve() : last.promise.catch(() => undefined);
  const entry: DirSync = {
    started: false,
    promise: previous
      .then(() => {
        entry.started = true;
        return fsyncDirNow(key);
      })
      .finally(() => {
        if (dirSyncs.get(key) === entry) dirSyncs.delete(key);
      }),
  };
  dirSyncs.set(key, entry);
  return entry.promise;
}

async function unlinkQuietly(p: string): Promise<void> {
  try {
    await unlink(p);
  } catch {
    // already gone: nothing to clean up
  }
}

/**
 * Bytes to store: a buffer, a string (UTF-8), or pieces stored one after another (a zstd frame
 * whose blocks are the encoder's own buffer: see catalog/zstd.ts FrameParts).
 */
export type Bytes = Buffer | string | readonly Buffer[];

/** `data` as one buffer (pieces are copied: for callers that cannot take them one by one). */
export function bytesToBuffer(data: Bytes): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  return data.length === 1 ? data[0]! : Buffer.concat(data);
}

/** How many bytes `data` stores (a string: its UTF-8 length). */
export function bytesLength(data: Bytes): number {
  if (typeof data === 'string') return Buffer.byteLength(data, 'utf8');
  if (Buffer.isBuffer(data)) return data.length;
  let n = 0;
  for (const part of data) n += part.length;
  return n;
}

/** Write all of `parts` at the file's current offset; writev(2) may write less than asked. */
async function writeAllParts(fh: FileHandle, parts: readonly Buffer[]): Promise<void> {
  let rest = parts.filter((p) => p.length > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await fh.writev(rest);
    if (bytesWritten === 0) throw new Error('writev wrote nothing');
    while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length;
    if (bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)];
  }
}

/** Write `data` durably to a new temp file beside `finalPath`; returns the temp path. */
export async function writeTemp(finalPath: string, data: Bytes, opts: WriteOptions = {}): Promise<string> {
  const tmp = tempPathFor(finalPath);
  const fh = await open(tmp, 'wx', opts.mode ?? 0o640);
  try {
    if (typeof data === 'string' || Buffer.isBuffer(data)) await fh.writeFile(data);
    else await writeAllParts(fh, data);
    await fh.sync();
    await fh.close(); // inside: some filesystems report a full disk only at close
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlinkQuietly(tmp);
    throw withPath(err, finalPath); // write(2) errors name no file; a full disk must say which
  }
  return tmp;
}

/** Replace `filePath` atomically with `data`; durable when the promise resolves. */
export async function writeFileAtomic(filePath: string, data: Bytes, opts: WriteOptions = {}): Promise<void> {
  const tmp = await writeTemp(filePath, data, opts);
  try {
    await rename(tmp, filePath);
  } catch (err) {
    await unlinkQuietly(tmp);
    throw err;
  }
  await fsyncDir(path.dirname(filePath));
}

/**
 * Publish a fully written temp file under `finalPath` unless something is already there. link(2)
 * fails with EEXIST instead of replacing, so of two concurrent writers exactly one creates the
 * file and the other learns it lost, without any lock. The temp name is removed either way.
 */
export async function linkNoClobber(tmpPath: string, finalPath: string): Promise<'created' | 'exists'> {
  let outcome: 'created' | 'exists' = 'created';
  try {
    await link(tmpPath, finalPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      await unlinkQuietly(tmpPath);
      throw err;
    }
    outcome = 'exists';
  }
  await unlinkQuietly(tmpPath);
  await fsyncDir(path.dirname(finalPath));
  return outcome;
}

/** Create `filePath` with `data` only if it does not exist yet; durable when it resolves. */
export async function writeFileNoClobber(filePath: string, data: Buffer | string, opts: WriteOptions = {}): Promise<'created' | 'exists'> {
  const tmp = await writeTemp(filePath, data, opts);
  return linkNoClobber(tmp, filePath);
}
