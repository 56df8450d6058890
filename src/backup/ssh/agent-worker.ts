/**
 * One thread of `pgbk backup-agent`'s pool: hashes a chunk (sha256 of its bytes) and, when asked,
 * compresses it into one zstd frame (src/catalog/zstd.ts: content size and checksum included),
 * so the agent's event loop only reads files and writes frames while both cores hash and
 * compress. The chunk's buffer is transferred in and back (the agent reuses it for the next
 * read); the frame, far smaller, is copied back.
 */

import { parentPort } from 'node:worker_threads';
import { zstdCodec } from '../../catalog/zstd.js';
import { sha256Hex } from '../../lib/checksum.js';

export interface ChunkJob {
  readonly id: number;
  readonly data: Uint8Array;
  /** zstd level; absent: hash only. */
  readonly level?: number;
  /** The previous backup's sha256 of this chunk: when equal, nothing is compressed. */
  readonly previous?: string;
}

export interface ChunkResult {
  readonly id: number;
  readonly hash: string;
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
      const data = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
      const hash = sha256Hex(data);
      const back = [job.data.buffer as ArrayBuffer];
      if (hash === job.previous || job.level === undefined) {
        port.postMessage({ id: job.id, hash, data: job.data } satisfies ChunkResult, back);
        return;
      }
      const frame = (await zstdCodec()).compress(data, job.level);
      port.postMessage({ id: job.id, hash, frame, data: job.data } satisfies ChunkResult, back);
    } catch (err) {
      port.postMessage({ id: job.id, hash: '', data: job.data, error: (err as Error).message } satisfies ChunkResult, [job.data.buffer as ArrayBuffer]);
    }
  })();
});
