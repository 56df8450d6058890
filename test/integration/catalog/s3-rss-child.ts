/**
 * A separate process for the s3 memory test: argv = repository config (JSON), key, MiB. It opens
 * the repository (the SDK loaded and warmed by one request), streams MiB of random bytes through
 * openWrite in 5 MiB parts, commits, and prints one JSON line: RSS before the stream, peak RSS
 * during it (sampled every 10 ms), and the commit's result. A process of its own, so the figures
 * are the upload's and not those of whatever the test process did before.
 */
import { randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openS3Repository } from '../../../src/catalog/s3/driver.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';

const [configJson, key, mib] = process.argv.slice(2);
if (configJson === undefined || key === undefined || mib === undefined) {
  console.error('usage: s3-rss-child CONFIG KEY MIB');
  process.exit(2);
}
const MiB = 1024 * 1024;
const repo = await openS3Repository(JSON.parse(configJson) as S3RepositoryConfig, { partSize: 5 * MiB, queueSize: 2 });
await repo.put(`${key}.warm`, randomFillSync(Buffer.alloc(MiB)));
async function* source(): AsyncGenerator<Buffer> {
  for (let i = 0; i < Number(mib); i++) yield randomFillSync(Buffer.allocUnsafe(MiB));
}
const before = process.memoryUsage().rss;
let peak = before;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 10);
const w = await repo.openWrite(key);
await pipeline(Readable.from(source()), w.stream);
const result = await w.commit();
clearInterval(sampler);
process.stdout.write(`${JSON.stringify({ before, peak, result })}\n`);
repo.close();
