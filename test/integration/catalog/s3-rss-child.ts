/**
 * A separate process for the s3 memory test: argv = repository config (JSON), key, MiB. It opens
 * the repository (the SDK loaded and warmed by one request), streams MiB of random bytes through
 * openWrite in 5 MiB parts, commits, and prints one JSON line: RSS before the stream, peak RSS
 * during it (sampled every 10 ms), and the commit's result, with the heap/external/arrayBuffers growth at that peak. A process of its own, so the figures
 * are the upload's and not those of whatever the test process did before.
 */
import { randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openS3Repository } from '../../../src/catalog/s3/driver.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';

const [configJson, key, mib, mode] = process.argv.slice(2);
// mode 'live' (run with --expose-gc): every sample first collects garbage, so maxArrayBuffers is
// the Buffer memory the upload really holds, not what the collector has not reclaimed yet.
const gc = mode === 'live' ? (globalThis as { gc?: () => void }).gc : undefined;
if (mode === 'live' && gc === undefined) {
  console.error('s3-rss-child: live mode needs node --expose-gc');
  process.exit(2);
}
if (configJson === undefined || key === undefined || mib === undefined) {
  console.error('usage: s3-rss-child CONFIG KEY MIB [live]');
  process.exit(2);
}
const MiB = 1024 * 1024;
const repo = await openS3Repository(JSON.parse(configJson) as S3RepositoryConfig, { partSize: 5 * MiB, queueSize: 2 });
await repo.put(`${key}.warm`, randomFillSync(Buffer.alloc(MiB)));
async function* source(): AsyncGenerator<Buffer> {
  for (let i = 0; i < Number(mib); i++) yield randomFillSync(Buffer.allocUnsafe(MiB));
}
const start = process.memoryUsage();
const before = start.rss;
let peak = before;
// The breakdown at the RSS peak, relative to before: external/arrayBuffers are Buffer bytes
// (part buffers, source chunks, garbage not yet collected), heapUsed the JS heap.
let atPeak = { heapUsed: 0, external: 0, arrayBuffers: 0 };
let maxArrayBuffers = 0;
const sampler = setInterval(() => {
  gc?.();
  const m = process.memoryUsage();
  maxArrayBuffers = Math.max(maxArrayBuffers, m.arrayBuffers - start.arrayBuffers);
  if (m.rss > peak) {
    peak = m.rss;
    atPeak = { heapUsed: m.heapUsed - start.heapUsed, external: m.external - start.external, arrayBuffers: m.arrayBuffers - start.arrayBuffers };
  }
}, 10);
const w = await repo.openWrite(key);
await pipeline(Readable.from(source()), w.stream);
const result = await w.commit();
clearInterval(sampler);
process.stdout.write(`${JSON.stringify({ before, peak, atPeak, maxArrayBuffers, result })}\n`);
repo.close();
