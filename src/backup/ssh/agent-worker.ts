/**
 * One thread of `pgbk backup-agent`'s pool: hashes a chunk (sha256 of its bytes) and, when asked,
 * compresses it into one zstd frame (src/catalog/zstd.ts: content size and checksum included),
 * so the agent's event loop only reads files and writes frames while both cores hash and
 * compress. The chunk's buffer is transferred in and back (the agent reuses it for the next
 * read); the frame, far smaller, is transferred (zstd-napi's encoder) or copied back.
 */

import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { compressInto, hasNativeEncoder, zstdCodec } from '../../catalog/zstd.js';
import { frameBound } from '../../catalog/zstd-frame.js';
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

/** Where zstd-napi's encoder writes a chunk's frame (zstd's bound for the largest chunk so far). */
let scratch = new Uint8Array(0);

/**
 * The chunk's frame by zstd-napi's encoder (zstd.ts compressInto), in memory of its own sized to
 * the frame, which is transferred to the agent's thread rather than copied; undefined where
 * zstd-napi is missing. ~1.5× the Rust encoder's speed on 1 MiB of a pgbench table (0.73–0.99 vs
 * 1.15–1.56 ms), whose output is joined into one more fresh buffer per chunk.
 */
function compressNative(data: Buffer, level: number): Uint8Array | undefined {
  const bound = frameBound(data.length);
  if (scratch.length < bound) scratch = new Uint8Array(bound);
  const n = compressInto(data, level, scratch);
  return n === undefined ? undefined : scratch.slice(0, n);
}

const port = parentPort;
if (port === null) throw new Error('agent-worker runs as a worker thread');
// Loaded now, while the agent still waits for its request (a failure shows on the first job); the
// Rust encoder only where zstd-napi's is missing.
if (!hasNativeEncoder()) zstdCodec().catch(() => undefined);

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
      const native = compressNative(data, job.level);
      if (native !== undefined) {
        port.postMessage({ id: job.id, hash, ...length, frame: native, data: job.data } satisfies ChunkResult, [...back, native.buffer as ArrayBuffer]);
        return;
      }
      const frame = (await zstdCodec()).compress(data, job.level);
      port.postMessage({ id: job.id, hash, ...length, frame, data: job.data } satisfies ChunkResult, back);
    } catch (err) {
      port.postMessage({ id: job.id, hash: '', data: job.data, error: (err as Error).message } satisfies ChunkResult, [job.data.buffer as ArrayBuffer]);
    }
  })();
});
