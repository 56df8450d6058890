/**
 * One thread of `pgbk backup-agent`'s pool: hashes a chunk (sha256 of its bytes) and, when asked,
 * compresses it into one zstd frame (src/catalog/zstd.ts: content size and checksum included),
 * so the agent's event loop only reads files and writes frames while both cores hash and
 * compress. The chunk's buffer is transferred in and back (the agent reuses it for the next
 * read); the frame, far smaller, is copied back.
 */

import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { zstdCodec } from '../../catalog/zstd.js';
import { sha256Hex } from '../../lib/checksum.js';
import { pagesPredate } from './page-lsn.js';

/**
 * The chunk to read first, by the worker itself (positional reads of a descriptor the agent's
 * thread opened: the threads share the process's descriptors), so that both cores copy file
 * bytes; `lsn`: the page-LSN shortcut (pagesPredate) applies when the chunk is as long as the
 * previous backup's.
 */
export interface ChunkRead {
  readonly fd: number;
  readonly position: number;
  readonly lsn?: { readonly hi: number; readonly lo: number; readonly pageSize: number; readonly previousLength: number };
}

export interface ChunkJob {
  readonly id: number;
  /** The chunk's bytes, or (with `read`) the buffer to read them into (its whole length). */
  readonly data: Uint8Array;
  readonly read?: ChunkRead;
  /** zstd level; absent: hash only. */
  readonly level?: number;
  /** The previous backup's sha256 of this chunk: when equal, nothing is compressed. */
  readonly previous?: string;
}

export interface ChunkResult {
  readonly id: number;
  /** '' when `lsnSame`. */
  readonly hash: string;
  /** With `read`: bytes read (the chunk is data[0, length)). */
  readonly length?: number;
  /** With `read`: every page predates the previous backup: neither hashed nor compressed. */
  readonly lsnSame?: boolean;
  /** The zstd frame (when a level was given and the hash differs from `previous`). */
  readonly frame?: Uint8Array;
  /** The chunk's bytes, handed back. */
  readonly data: Uint8Array;
  readonly error?: string;
}

const port = parentPort;
if (port === null) throw new Error('agent-worker runs as a worker thread');
// Loaded now, while the agent still waits for its request (a failure shows on the first job).
zstdCodec().catch(() => undefined);

port.on('message', (job: ChunkJob) => {
  void (async (): Promise<void> => {
    try {
      let data = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
      const back = [job.data.buffer as ArrayBuffer];
      const r = job.read;
      let length: { length: number } | object = {};
      if (r !== undefined) {
        let n = 0;
        while (n < data.length) {
          const got = readSync(r.fd, data, n, data.length - n, r.position + n);
          if (got === 0) break;
          n += got;
        }
        data = data.subarray(0, n);
        length = { length: n };
        if (r.lsn !== undefined && n === r.lsn.previousLength && pagesPredate(data, r.lsn.pageSize, r.lsn)) {
          port.postMessage({ id: job.id, hash: '', length: n, lsnSame: true, data: job.data } satisfies ChunkResult, back);
          return;
        }
      }
      const hash = sha256Hex(data);
      if (hash === job.previous || job.level === undefined) {
        port.postMessage({ id: job.id, hash, ...length, data: job.data } satisfies ChunkResult, back);
        return;
      }
      const frame = (await zstdCodec()).compress(data, job.level);
      port.postMessage({ id: job.id, hash, ...length, frame, data: job.data } satisfies ChunkResult, back);
    } catch (err) {
      port.postMessage({ id: job.id, hash: '', data: job.data, error: (err as Error).message } satisfies ChunkResult, [job.data.buffer as ArrayBuffer]);
    }
  })();
});
