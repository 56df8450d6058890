/**
 * One compression thread of compress-pool.ts: each message names a segment in a
 * SharedArrayBuffer (the pusher read it there, so it is never copied to reach us); the zstd frame
 * of it (catalog/compress.ts, the archive's own format) goes back in an ArrayBuffer of its own,
 * transferred, not copied: it is what the archive stores (and WebCrypto hashes no shared memory).
 *
 * The encoder's output is an external buffer that V8 does not count towards its heap: with the few
 * small objects a job leaves, a young-generation collection was rare, and a backlog left one dead
 * frame per segment in each thread (most of the worker's 369 MB). A scavenge after each job
 * (a few tenths of a millisecond for this thread's tiny heap) frees them at once.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { compressBuffer } from '../catalog/compress.js';

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

/** `frame` in an ArrayBuffer that holds exactly it (transferable). */
function own(frame: Buffer): ArrayBuffer {
  const ab = frame.buffer;
  if (ab instanceof ArrayBuffer && frame.byteOffset === 0 && ab.byteLength === frame.length) return ab;
  return new Uint8Array(frame).buffer;
}

const port = parentPort;
port?.on('message', (job: Job) => {
  void (async () => {
    try {
      const frame = own(await compressBuffer(Buffer.from(job.input, job.offset, job.length), 'zstd'));
      port.postMessage({ frame }, [frame]);
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
    gc?.({ type: 'minor' });
  })();
});
