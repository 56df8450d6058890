/**
 * One compression thread of compress-pool.ts: each message names a segment in a
 * SharedArrayBuffer (the pusher read it there, so it is never copied to reach us) and an output
 * SharedArrayBuffer lent by the pool; the zstd frame of the segment (catalog/compress.ts, the
 * archive's own format) is written there in one piece, with its sha256 computed here, off the
 * worker's own thread. The output memory is reused from segment to segment: a frame transferred
 * in a fresh ArrayBuffer of its own (as before) was ~3 MB of new external memory per segment on
 * the worker's thread, which drove V8 to full collections of the worker's heap (the AWS SDK's
 * included) every few dozen segments, and fresh pages to fault in on every frame.
 *
 * Where zstd-napi is installed its encoder writes the frame straight into that output (zstd.ts
 * compressInto): nothing else is allocated per segment, which took the compression of a pgbench
 * segment from ~62 to ~34 ms here. Elsewhere the Rust encoder's frame is copied there (~0.3 ms),
 * and its output is an external buffer that V8 does not count towards its heap: with the few
 * small objects a job leaves, a young-generation collection was rare, and a backlog left one dead
 * frame per segment in each thread (most of the worker's 369 MB). A scavenge after each job
 * (a few tenths of a millisecond for this thread's tiny heap) frees them at once.
 */

import { parentPort } from 'node:worker_threads';
import { compressParts, ZSTD_LEVEL } from '../catalog/compress.js';
import { compressInto, hasNativeEncoder } from '../catalog/zstd.js';
import { sha256Hex } from '../lib/checksum.js';
import { exposedGc } from '../lib/v8-gc.js';

interface Job {
  readonly input: SharedArrayBuffer;
  readonly offset: number;
  readonly length: number;
  /** Where to write the frame, from offset 0 (room for zstd's bound: catalog/zstd-frame.ts frameBound). */
  readonly output: SharedArrayBuffer;
}

/** The answer: the frame's length in the job's output and its sha256, or why there is none. */
export interface FrameMessage {
  readonly written?: number;
  readonly sha256?: string;
  readonly error?: string;
}

const gc = exposedGc();

/** `parts` one after another at the start of `out` (the view of them), or undefined when too long. */
function copyInto(parts: readonly Buffer[], out: Buffer): Buffer | undefined {
  let at = 0;
  for (const p of parts) {
    if (at + p.length > out.length) return undefined;
    at += p.copy(out, at);
  }
  return out.subarray(0, at);
}

/**
 * The frame of `input` written at the start of `output`: by zstd-napi's encoder in place when it is
 * installed (zstd.ts compressInto), else by the Rust encoder and copied there.
 */
async function frameInto(input: Buffer, output: Buffer): Promise<Buffer> {
  const n = compressInto(input, ZSTD_LEVEL, output);
  if (n !== undefined) return output.subarray(0, n);
  const written = copyInto(await compressParts(input, 'zstd'), output);
  // Cannot happen for an output of zstd's bound; the caller then compresses on its own thread.
  if (written === undefined) throw new Error('the frame is larger than its output buffer');
  return written;
}

const port = parentPort;
// Load the encoder now, while the worker opens its store, not on the first segment (the Rust one
// only where zstd-napi is missing).
if (!hasNativeEncoder()) {
  void import('../catalog/zstd.js').then((m) => m.zstdCodec()).catch(() => undefined);
}
port?.on('message', (job: Job) => {
  void (async () => {
    try {
      const written = await frameInto(Buffer.from(job.input, job.offset, job.length), Buffer.from(job.output));
      port.postMessage({ written: written.length, sha256: sha256Hex(written) } satisfies FrameMessage);
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) } satisfies FrameMessage);
    }
    gc?.({ type: 'minor' });
  })();
});
