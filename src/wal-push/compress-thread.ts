/**
 * One compression thread of compress-pool.ts: each message names an input and an output region
 * of SharedArrayBuffers; the zstd frame of the input (catalog/compress.ts, the archive's own
 * format) is copied into the output and its length answered.
 */

import { parentPort } from 'node:worker_threads';
import { compressBuffer } from '../catalog/compress.js';

interface Job {
  readonly input: SharedArrayBuffer;
  readonly offset: number;
  readonly length: number;
  readonly output: SharedArrayBuffer;
  readonly outOffset: number;
  readonly outLength: number;
}

const port = parentPort;
port?.on('message', (job: Job) => {
  void (async () => {
    try {
      const frame = await compressBuffer(Buffer.from(job.input, job.offset, job.length), 'zstd');
      if (frame.length > job.outLength) throw new Error(`zstd frame of ${frame.length} bytes exceeds the ${job.outLength}-byte output`);
      frame.copy(Buffer.from(job.output, job.outOffset, job.outLength));
      port.postMessage({ length: frame.length });
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
  })();
});
