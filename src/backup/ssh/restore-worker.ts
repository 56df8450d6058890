/**
 * One thread of a restore's pool (restore-tree.ts): reads one stored object of an `ssh` backup,
 * decompresses it, checks its length and sha256 (readStoredObject) and writes it at its offset into
 * the target file the main thread opened (file descriptors are shared by the threads of a process).
 * So decompression and hashing run on every core while the main thread only walks the tree.
 */

import { write } from 'node:fs';
import { promisify } from 'node:util';
import { parentPort } from 'node:worker_threads';
import { PgbkError, type ErrorCode } from '../../errors.js';
import { readStoredObject, type StoredObject } from './stored-tree.js';

const writeAt = promisify(write);

export interface RestoreJob {
  readonly id: number;
  /** Open for writing by the main thread. */
  readonly fd: number;
  readonly position: number;
  readonly object: StoredObject;
  readonly server: string;
}

export interface RestoreResult {
  readonly id: number;
  /** A failure: PgbkError's code (or the errno code of a system error), message and path. */
  readonly error?: { readonly message: string; readonly pgbkCode?: ErrorCode; readonly errno?: string; readonly path?: string };
}

const port = parentPort;
if (port === null) throw new Error('restore-worker runs as a worker thread');

async function run(job: RestoreJob): Promise<void> {
  const data = await readStoredObject(job.object, job.server);
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
