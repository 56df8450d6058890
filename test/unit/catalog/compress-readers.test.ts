/**
 * What reads archived WAL (wal-fetch's Node path, its prefetch worker, verify) decodes through
 * compress.ts without loading the compressors' native modules (@toondepauw/node-zstd,
 * @node-rs/xxhash: ~50 ms of a process's start), and still decodes exactly.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const COMPRESS = fileURLToPath(new URL('../../../src/catalog/compress.js', import.meta.url));

/** In a fresh process: `call` on a zstd frame of 1 MiB, then which compressor packages Node has loaded. */
function loadedAfter(call: 'decompressBuffer' | 'decompressToFd' | 'compressBuffer'): { same: boolean; loaded: string[] } {
  const script = `
    import { compressBuffer, decompressBuffer, decompressToFd } from ${JSON.stringify(COMPRESS)};
    import { createRequire } from 'node:module';
    import { openSync, readFileSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
    import os from 'node:os';
    import path from 'node:path';
    import { execFileSync } from 'node:child_process';
    const content = Buffer.alloc(1 << 20, 7);
    content.write('pgbk', 12345);
    const frame = execFileSync('zstd', ['-q', '-c', '-1', '--content-size'], { input: content });
    const req = createRequire(import.meta.url);
    const before = new Set(Object.keys(req.cache));
    let out;
    if (${JSON.stringify(call)} === 'decompressBuffer') out = await decompressBuffer(frame, 'zstd');
    else if (${JSON.stringify(call)} === 'decompressToFd') {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-readers-'));
      const fd = openSync(path.join(dir, 'out'), 'w+');
      await decompressToFd(frame, 'zstd', fd, 0, { expectedLength: content.length });
      closeSync(fd);
      out = readFileSync(path.join(dir, 'out'));
      rmSync(dir, { recursive: true });
    } else out = await decompressBuffer(await compressBuffer(content, 'zstd'), 'zstd');
    const loaded = Object.keys(req.cache).filter((k) => !before.has(k) && /node-zstd|xxhash/.test(k));
    console.log(JSON.stringify({ same: out.equals(content), loaded }));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

test('decompressBuffer and decompressToFd decode exactly without loading a compressor', () => {
  for (const call of ['decompressBuffer', 'decompressToFd'] as const) {
    const r = loadedAfter(call);
    assert.ok(r.same, `${call}: the content`);
    assert.equal(r.loaded, [], `${call} loaded ${r.loaded.join(', ')}`);
  }
});

test('compressing still loads the native compressor (the check above can see it)', () => {
  const r = loadedAfter('compressBuffer');
  assert.ok(r.same);
  assert.ok(r.loaded.length > 0, 'the compressor packages are seen when they load');
});

test.run();
