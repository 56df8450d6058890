/**
 * Writes of the posix driver, with lib/atomic.ts's discipline (temp file in the same directory →
 * fsync → rename, or link(2) when the key must never be replaced → fsync the directory). The
 * on-disk result is today's catalog byte for byte: the same dot-named temp files, modes, and the
 * SHA256SUMS line an archived WAL file gets.
 */

import { createHash } from 'node:crypto';
import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { type Bytes, fsyncDir, linkNoClobber, tempPathFor, writeFileAtomic, writeTemp } from '../../lib/atomic.js';
import type { CreateOutcome, ObjectWriter, PutIfAbsentOptions, PutOptions, WriteOptions, WriteResult } from '../repository.js';
import { sha256Hex } from '../../lib/checksum.js';
import { appendChecksum, CHECKSUMS_FILE, readChecksums } from './checksums.js';
import { withPath } from '../../lib/free-space.js';
import { FILE_MODE, failure, inDir } from './fs-util.js';

export async function putFile(file: string, data: Bytes, opts: PutOptions = {}): Promise<void> {
  try {
    await inDir(path.dirname(file), () => writeFileAtomic(file, data, { mode: opts.mode ?? FILE_MODE }));
  } catch (err) {
    throw failure('write', file, err);
  }
}

/**
 * link(2) publishes the temp file only if the name is free, so of concurrent writers exactly one
 * creates it. With a sha256, the SHA256SUMS line follows; a crash between the two leaves a file
 * without its line, which the next putIfAbsent of the same bytes restores (a re-pushed segment).
 */
export async function putFileIfAbsent(file: string, data: Bytes, opts: PutIfAbsentOptions = {}): Promise<CreateOutcome> {
  const dir = path.dirname(file);
  const name = path.basename(file);
  try {
    const tmp = await inDir(dir, () => writeTemp(file, data, { mode: opts.mode ?? FILE_MODE }));
    const outcome = await linkNoClobber(tmp, file);
    const sha256 = opts.sha256;
    if (sha256 === undefined) return outcome;
    const record = async (): Promise<void> => {
      const sums = path.join(dir, CHECKSUMS_FILE);
      // The error names SHA256SUMS (an append's write error names no file): the object is stored.
      await appendChecksum(dir, name, sha256).catch((err: unknown) => {
        throw failure('write', sums, withPath(err, sums));
      });
    };
    if (outcome === 'created') {
      await record();
    } else if (!(await readChecksums(dir)).has(name) && sha256Hex(await readFile(file)) === sha256) {
      await record();
    }
    return outcome;
  } catch (err) {
    throw failure('write', file, err);
  }
}

async function unlinkQuietly(p: string): Promise<void> {
  try {
    await unlink(p);
  } catch {
    // already gone
  }
}

/** A Writable over a temp file: fsynced and closed by end(), closed (not removed) on destroy. */
function tempFileStream(fh: FileHandle, onBytes: (chunk: Buffer) => void): Writable {
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  return new Writable({
    writev(chunks, cb) {
      const bufs = chunks.map((c) => c.chunk as Buffer);
      for (const b of bufs) onBytes(b);
      fh.writev(bufs).then(() => cb(), cb);
    },
    final(cb) {
      fh.sync()
        .then(close)
        .then(() => cb(), cb);
    },
    destroy(err, cb) {
      close().then(
        () => cb(err),
        () => cb(err),
      );
    },
  });
}

export async function openFileWrite(key: string, file: string, opts: WriteOptions = {}): Promise<ObjectWriter> {
  const tmp = tempPathFor(file);
  let fh: FileHandle;
  try {
    fh = await inDir(path.dirname(file), () => open(tmp, 'wx', opts.mode ?? FILE_MODE));
  } catch (err) {
    throw failure('create', tmp, err);
  }
  const hash = createHash('sha256');
  let size = 0;
  const stream = tempFileStream(fh, (chunk) => {
    hash.update(chunk);
    size += chunk.length;
  });
  let state: 'open' | 'committed' | 'aborted' = 'open';
  return {
    key,
    stream,
    async commit(): Promise<WriteResult> {
      if (state !== 'open') throw failure('commit', file, new Error(`the write was already ${state}`));
      if (!stream.writableFinished || stream.errored !== null) {
        throw failure('commit', file, new Error('the stream has not finished (end it, or await the pipeline, first)'));
      }
      state = 'committed';
      const sha256 = hash.digest('hex');
      try {
        if (opts.ifAbsent === true) return { outcome: await linkNoClobber(tmp, file), size, sha256 };
        await rename(tmp, file);
        await fsyncDir(path.dirname(file));
        return { outcome: 'created', size, sha256 };
      } catch (err) {
        await unlinkQuietly(tmp);
        throw failure('publish', file, err);
      }
    },
    async abort(): Promise<void> {
      if (state !== 'open') return;
      state = 'aborted';
      if (!stream.destroyed) {
        await new Promise<void>((resolve) => {
          stream.once('close', resolve);
          stream.destroy();
        });
      }
      await unlinkQuietly(tmp);
    },
  };
}
