/**
 * zstd compression of pushed segments on worker threads, so that a backlog is compressed on every
 * core while the worker's own thread reads, hashes and fsyncs (a 16 MiB segment costs ~50 ms of
 * CPU at level 1 here: on one thread the drain would stop near 20 segments/s). Input and output
 * is the pusher's read buffer, a SharedArrayBuffer it reuses, so no 16 MiB is copied or freshly
 * allocated per segment (page faults on fresh buffers cost as much as the compression on this
 * machine kind). The frame comes back the same way: written by the thread into an output buffer
 * of shared memory the pool lends for the job and takes back once the caller has stored the frame
 * (release), so a backlog reuses a few output buffers instead of bringing ~3 MB of fresh memory
 * per segment into the worker's heap (see compress-thread.ts). It is exactly what
 * catalog/compress.ts writes (same code, run in the thread).
 */

import { Worker } from 'node:worker_threads';
import type { PrecompressedFrame } from '../catalog/wal-archive.js';
import { frameBound } from '../catalog/zstd-frame.js';
import type { FrameMessage } from './compress-thread.js';

/**
 * A compressed frame in memory lent by the pool: `release()` gives the memory back for the next
 * frame, so it must come only once nothing reads `frame` any more (the store has answered).
 */
export interface LentFrame {
  readonly frame: PrecompressedFrame;
  release(): void;
}

export class CompressPool {
  private readonly idle: Worker[] = [];
  private readonly waiters: ((w: Worker) => void)[] = [];
  private readonly all: Worker[] = [];
  /** Output buffers given back, for the next frames; at most `maxSpareOutputs` are kept. */
  private readonly outputs: SharedArrayBuffer[] = [];

  /** `maxSpareOutputs`: output buffers kept for reuse (one per frame the caller holds at once). */
  constructor(
    size: number,
    private readonly maxSpareOutputs = 8,
  ) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL('./compress-thread.js', import.meta.url));
      w.unref();
      w.on('error', () => undefined); // a failed job rejects below; the caller compresses itself
      this.all.push(w);
      this.idle.push(w);
    }
  }

  private take(): Promise<Worker> {
    const w = this.idle.pop();
    return w !== undefined ? Promise.resolve(w) : new Promise((r) => this.waiters.push(r));
  }

  private give(w: Worker): void {
    const next = this.waiters.shift();
    if (next !== undefined) next(w);
    else this.idle.push(w);
  }

  private output(n: number): SharedArrayBuffer {
    const i = this.outputs.findIndex((b) => b.byteLength >= frameBound(n));
    if (i >= 0) return this.outputs.splice(i, 1)[0]!;
    return new SharedArrayBuffer(frameBound(n));
  }

  /**
   * The zstd frame of `data` (a view of a SharedArrayBuffer, isShared) and its sha256, in memory
   * lent until release().
   */
  async compress(data: Buffer): Promise<LentFrame> {
    const output = this.output(data.length);
    let lent = false;
    const release = (): void => {
      if (lent) return;
      lent = true;
      if (this.outputs.length < this.maxSpareOutputs) this.outputs.push(output);
    };
    try {
      const reply = await this.run({ input: data.buffer, offset: data.byteOffset, length: data.length, output });
      if (reply.error !== undefined) throw new Error(reply.error);
      const sha256 = reply.sha256 === undefined ? {} : { sha256: reply.sha256 };
      if (reply.written === undefined) throw new Error('no answer from the compression thread');
      return { frame: { parts: [Buffer.from(output, 0, reply.written)], ...sha256 }, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  private async run(job: { input: ArrayBufferLike; offset: number; length: number; output: SharedArrayBuffer }): Promise<FrameMessage> {
    const w = await this.take();
    try {
      return await new Promise<FrameMessage>((resolve, reject) => {
        const onMessage = (m: FrameMessage): void => {
          w.off('error', onError).off('exit', onExit);
          resolve(m);
        };
        const onError = (e: Error): void => {
          w.off('message', onMessage).off('exit', onExit);
          reject(e);
        };
        const onExit = (): void => {
          w.off('message', onMessage).off('error', onError);
          reject(new Error('the compression thread exited'));
        };
        w.once('message', onMessage).once('error', onError).once('exit', onExit);
        w.postMessage(job);
      });
    } finally {
      this.give(w);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}

/** A buffer backed by shared memory (a compression thread reads or writes it in place). */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/** Whether `b` is a view of shared memory (a compression thread can read it in place). */
export function isShared(b: Buffer): boolean {
  return b.buffer instanceof SharedArrayBuffer;
}
