/**
 * One thread of a restore's pool (restore-tree.ts): reads one stored object of an `ssh` backup,
 * decompresses it, checks its length and sha256 (readStoredObject) and writes it at its offset into
 * the target file the main thread opened (file descriptors are shared by the threads of a process).
 * So decompression and hashing run on every core while the main thread only walks the tree.
 */

import { readFileSync, write } from 'node:fs';
import { promisify } from 'node:util';
import { parentPort } from 'node:worker_threads';
import { zstdCodec } from '../../catalog/zstd.js';
import { PgbkError, type ErrorCode } from '../../errors.js';
import { sha256Hasher } from '../../lib/checksum.js';
import { checkStoredBytes, readStoredObject, type StoredObject } from './stored-tree.js';

const writeAt = promisify(write);

export interface RestoreJob {
  readonly id: number;
  /** Open for writing by the main thread. */
  readonly fd: number;
  readonly position: number;
  readonly object: StoredObject;
  readonly server: string;
  /** The object's stored bytes, when the main thread read them (object storage); else read from object.file here. */
  readonly stored?: Uint8Array;
}

export interface RestoreResult {
  readonly id: number;
  /** A failure: PgbkError's code (or the errno code of a system error), message and path. */
  readonly error?: { readonly message: string; readonly pgbkCode?: ErrorCode; readonly errno?: string; readonly path?: string };
}

const port = parentPort;
if (port === null) throw new Error('restore-worker runs as a worker thread');

function damaged(server: string, file: string, why: string): PgbkError {
  return new PgbkError('CATALOG', `stored backup damaged: ${file} ${why}`, { server, path: file });
}

/**
 * A compressed chunk decoded straight into the target file (no Buffer of the chunk: the decoder
 * writes its runs from its own memory), hashed as it is written. A chunk that fails its length,
 * zstd checksum or sha256 has then left bytes in the file: the restore fails, and its caller
 * empties the target, as for any failure.
 */
async function runCompressed(job: RestoreJob): Promise<void> {
  const o = job.object;
  // Read synchronously, like the writes: libuv's 4 threads are shared by the whole process, and the
  // main thread's fdatasync calls of finished files would hold them while a chunk read waits.
  let stored: Buffer;
  try {
    stored = job.stored !== undefined ? Buffer.from(job.stored.buffer, job.stored.byteOffset, job.stored.byteLength) : readFileSync(o.file);
  } catch (err) {
    throw damaged(job.server, o.file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const hash = o.sha256 === undefined ? undefined : sha256Hasher();
  const codec = await zstdCodec();
  try {
    codec.decompressToFd(stored, job.fd, job.position, {
      expectedLength: o.length,
      ...(hash === undefined ? {} : { tap: (run: Uint8Array) => hash.update(Buffer.from(run.buffer, run.byteOffset, run.byteLength)) }),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).syscall !== undefined) throw err; // the write failed, not the chunk
    throw damaged(job.server, o.file, `does not match its recorded sha256 (cannot be decompressed: ${(err as Error).message})`);
  }
  if (hash !== undefined && hash.hex() !== o.sha256) throw damaged(job.server, o.file, 'does not match its recorded sha256');
}

async function run(job: RestoreJob): Promise<void> {
  if (job.object.compressed === true) return runCompressed(job);
  const data =
    job.stored === undefined
      ? await readStoredObject(job.object, job.server)
      : await checkStoredBytes(job.object, Buffer.from(job.stored.buffer, job.stored.byteOffset, job.stored.byteLength), job.server);
  for (let at = 0; at < data.length; ) {
    const { bytesWritten } = await writeAt(job.fd, data, at, data.length - at, job.position + at);
    at += bytesWritten;
  }
}

port.on('message', (job: RestoreJob) => {
  run(job).then(
    () => port.postMessage({ id: job.id } satisfies RestoreResult),
    (err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      const error =
        e instanceof PgbkError
          ? { message: e.message, pgbkCode: e.code, ...(e.path === undefined ? {} : { path: e.path }) }
          : { message: e.message, ...(e.code === undefined ? {} : { errno: e.code }), ...(e.path === undefined ? {} : { path: e.path }) };
      port.postMessage({ id: job.id, error } satisfies RestoreResult);
    },
  );
});
