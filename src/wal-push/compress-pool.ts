/**
 * zstd compression of pushed segments on worker threads, so that a backlog is compressed on every
 * core while the worker's own thread reads, hashes and fsyncs (a 16 MiB segment costs ~50 ms of
 * CPU at level 1 here: on one thread the drain would stop near 20 segments/s). Input and output
 * is the pusher's read buffer, a SharedArrayBuffer it reuses, so no 16 MiB is copied or freshly
 * allocated per segment (page faults on fresh buffers cost as much as the compression on this
 * machine kind); the frame comes back transferred (moved, not copied). It is exactly what
 * catalog/compress.ts writes (same code, run in the thread).
 */

import { Worker } from 'node:worker_threads';
import type { PrecompressedFrame } from '../catalog/wal-archive.js';
import type { PartMessage } from './compress-thread.js';

interface Reply {
  readonly parts?: readonly PartMessage[];
  readonly sha256?: string;
  readonly error?: string;
}

export class CompressPool {
  private readonly idle: Worker[] = [];
  private readonly waiters: ((w: Worker) => void)[] = [];
  private readonly all: Worker[] = [];

  constructor(size: number) {
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

  /**
   * The zstd frame of `data` (a view of a SharedArrayBuffer, isShared) as pieces in memory of their
   * own, and its sha256.
   */
  async compress(data: Buffer): Promise<PrecompressedFrame> {
    const w = await this.take();
    try {
      const reply = await new Promise<Reply>((resolve, reject) => {
        const onMessage = (m: Reply): void => {
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
        w.postMessage({ input: data.buffer, offset: data.byteOffset, length: data.length });
      });
      if (reply.error !== undefined || reply.parts === undefined) throw new Error(reply.error ?? 'no answer from the compression thread');
      return { parts: reply.parts.map((p) => Buffer.from(p.buffer, p.offset, p.length)), ...(reply.sha256 === undefined ? {} : { sha256: reply.sha256 }) };
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
