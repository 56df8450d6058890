/**
 * One job of a local `ssh` restore (chunk-tree-plan.ts), run synchronously by whichever thread
 * takes it: a restore thread (chunk-tree-worker.ts) or the main thread once it has walked the
 * tree (chunk-tree-copy.ts). Reads the job's stored objects, decompresses them straight into the
 * target file, checks every object's length and sha256, and finishes the file (mode, times,
 * owner, fdatasync) when the job completes it.
 */

import { createHash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, fdatasyncSync, fstatSync, futimesSync, openSync, readSync, writeSync } from 'node:fs';
import type { StoredObject } from '../backup/ssh/stored-tree.js';
import type { ZstdDecoder } from '../catalog/zstd.js';
import { PgbkError } from '../errors.js';
import { type FileFinish, SPLIT_BASE, type TreeJob, type TreeWorkResult } from './chunk-tree-plan.js';

function damaged(server: string, file: string, why: string): PgbkError {
  return new PgbkError('CATALOG', `stored backup damaged: ${file} ${why}`, { server, path: file });
}

/**
 * The stored bytes of `o`, read into this thread's buffer (valid until the next read): a fresh
 * Buffer per chunk (readFileSync) was garbage for the collector at every chunk.
 */
let scratch = Buffer.allocUnsafe(1 << 20);
function readStored(o: StoredObject, server: string): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(o.file, constants.O_RDONLY);
    const size = fstatSync(fd).size;
    if (size > scratch.length) scratch = Buffer.allocUnsafe(size);
    let n = 0;
    while (n < size) {
      const r = readSync(fd, scratch, n, size - n, n);
      if (r === 0) break; // shorter than it was: zstd or the length check refuses what was read
      n += r;
    }
    return scratch.subarray(0, n);
  } catch (err) {
    throw damaged(server, o.file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Object `o` written at `position` of `fd`, checked. A compressed one is decoded straight into the
 * file, hashed as it is written: one that fails its length, zstd checksum or sha256 has then left
 * bytes in the file, and the restore fails (its caller empties the target, as for any failure).
 */
function writeObject(codec: ZstdDecoder, fd: number, position: number, o: StoredObject, server: string): void {
  const stored = readStored(o, server);
  const hash = o.sha256 === undefined ? undefined : createHash('sha256');
  if (o.compressed === true) {
    try {
      codec.decompressToFd(stored, fd, position, {
        expectedLength: o.length,
        ...(hash === undefined ? {} : { tap: (run: Uint8Array) => hash.update(run) }),
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).syscall !== undefined) throw err; // the write failed, not the chunk
      throw damaged(server, o.file, `does not match its recorded sha256 (cannot be decompressed: ${(err as Error).message})`);
    }
  } else {
    if (stored.length !== o.length) throw damaged(server, o.file, `is ${stored.length} bytes, ${o.length} expected`);
    hash?.update(stored);
    for (let at = 0; at < stored.length; ) at += writeSync(fd, stored, at, stored.length - at, position + at);
  }
  if (hash !== undefined && hash.digest('hex') !== o.sha256) throw damaged(server, o.file, 'does not match its recorded sha256');
}

/** Mode, times and owner as recorded, then durable: the data directory is complete on disk when the restore returns. */
function finishFile(fd: number, f: FileFinish): void {
  fchmodSync(fd, f.mode);
  futimesSync(fd, f.mtimeMs / 1000, f.mtimeMs / 1000);
  if (f.owner !== undefined) fchownSync(fd, f.owner.uid, f.owner.gid);
  fdatasyncSync(fd);
}

export function runJob(codec: ZstdDecoder, job: TreeJob, control: Int32Array, server: string): void {
  const whole = job.split === undefined;
  const fd = whole
    ? openSync(job.target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    : openSync(job.target, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    let position = job.position;
    for (const o of job.objects) {
      writeObject(codec, fd, position, o, server);
      position += o.length;
    }
    if (whole) finishFile(fd, job.finish);
    else fdatasyncSync(fd); // this range is on disk before it counts as done
  } finally {
    closeSync(fd);
  }
  // Every other range of the file was flushed before it was counted: the last one finishes it.
  if (job.split !== undefined && Atomics.sub(control, SPLIT_BASE + job.split, 1) === 1) {
    const last = openSync(job.target, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      finishFile(last, job.finish);
    } finally {
      closeSync(last);
    }
  }
}

/** A failure as a thread reports it (chunk-tree-copy.ts errorOf turns it back into an Error). */
export function failureOf(err: unknown): NonNullable<TreeWorkResult['error']> {
  const e = err as NodeJS.ErrnoException;
  return e instanceof PgbkError
    ? { message: e.message, pgbkCode: e.code, ...(e.path === undefined ? {} : { path: e.path }) }
    : { message: e.message, ...(e.code === undefined ? {} : { errno: e.code }), ...(e.path === undefined ? {} : { path: e.path }) };
}
