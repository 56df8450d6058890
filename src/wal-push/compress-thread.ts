/**
 * One compression thread of compress-pool.ts: each message names a segment in a
 * SharedArrayBuffer (the pusher read it there, so it is never copied to reach us); the zstd frame
 * of it (catalog/compress.ts, the archive's own format) goes back as its pieces (zstd.ts
 * FrameParts: the encoder's output is not copied into one buffer), their ArrayBuffers transferred,
 * not copied, with the frame's sha256 computed here, off the worker's own thread.
 *
 * The encoder's output is an external buffer that V8 does not count towards its heap: with the few
 * small objects a job leaves, a young-generation collection was rare, and a backlog left one dead
 * frame per segment in each thread (most of the worker's 369 MB). A scavenge after each job
 * (a few tenths of a millisecond for this thread's tiny heap) frees them at once.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { compressParts } from '../catalog/compress.js';
import { sha256Hex } from '../lib/checksum.js';

interface Job {
  readonly input: SharedArrayBuffer;
  readonly offset: number;
  readonly length: number;
}

type Gc = (opts?: { type: 'minor' | 'major'; execution?: 'sync' }) => void;

/** V8's gc(), without --expose-gc on the command line (the flag is read when a context is made). */
function exposeGc(): Gc | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as Gc) : undefined;
  } catch {
    return undefined;
  }
}

const gc = exposeGc();

/** A piece of the frame as it travels: an ArrayBuffer (transferred) and where the piece lies in it. */
export interface PartMessage {
  readonly buffer: ArrayBuffer;
  readonly offset: number;
  readonly length: number;
}

/**
 * `part` in an ArrayBuffer that may be transferred: its own when nothing else lives in it (a
 * pooled or shared buffer is copied; transferring would take its neighbours with it).
 */
function own(part: Buffer, taken: Set<ArrayBuffer>): PartMessage {
  const ab = part.buffer;
  const alone = ab instanceof ArrayBuffer && ab.byteLength - part.length <= 64 && !taken.has(ab);
  if (alone) {
    taken.add(ab);
    return { buffer: ab, offset: part.byteOffset, length: part.length };
  }
  const copy = new Uint8Array(part).buffer;
  taken.add(copy);
  return { buffer: copy, offset: 0, length: part.length };
}

const port = parentPort;
port?.on('message', (job: Job) => {
  void (async () => {
    try {
      const parts = await compressParts(Buffer.from(job.input, job.offset, job.length), 'zstd');
      const sha256 = sha256Hex(parts);
      const taken = new Set<ArrayBuffer>();
      const messages = parts.map((p) => own(p, taken));
      port.postMessage({ parts: messages, sha256 }, [...taken]);
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
    gc?.({ type: 'minor' });
  })();
});
