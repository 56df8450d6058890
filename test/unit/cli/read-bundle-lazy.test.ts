/**
 * What the read bundle (dist/src/cli/read-bundle.cjs, scripts/bundle-read.mjs) leaves out of every
 * `list` and `status` start (issue 13 item 5): the WebAssembly zstd decoder's 110 kB of base64
 * (catalog/zstd-wasm.gen.ts) is a file of its own, required only where catalog/zstd.ts is first
 * used; and the bundle's text is ASCII, so V8 holds it as a one-byte string.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZSTD_DECODER_WASM_BASE64 } from '../../../src/catalog/zstd-wasm.gen.js';
import { READ_BUNDLE } from '../../../src/cli/read-bundle-loader.js';

const CLI = fileURLToPath(new URL('../../../src/cli.js', import.meta.url));
const WASM_MODULE = fileURLToPath(new URL('../../../src/catalog/zstd-wasm.gen.js', import.meta.url));

let dir: string;

test.before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-read-bundle-lazy-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('the bundle requires the zstd decoder from its own file instead of carrying it', () => {
  const text = readFileSync(READ_BUNDLE, 'utf8');
  assert.not.ok(text.includes(ZSTD_DECODER_WASM_BASE64.slice(0, 200)), 'the decoder is in the bundle');
  const required = [...text.matchAll(/require\("(\.[^"]*zstd-wasm\.gen\.js)"\)/g)].map((m) => m[1]!);
  assert.equal(required, ['../catalog/zstd-wasm.gen.js']);
  // As the bundle resolves it (its require is createRequire of its own file): the very decoder.
  const resolved = createRequire(READ_BUNDLE).resolve(required[0]!);
  assert.is(resolved, WASM_MODULE);
  const loaded = createRequire(READ_BUNDLE)(required[0]!) as { ZSTD_DECODER_WASM_BASE64: string };
  assert.is(loaded.ZSTD_DECODER_WASM_BASE64, ZSTD_DECODER_WASM_BASE64);
});

test('the bundle is ASCII only', () => {
  const bytes = readFileSync(READ_BUNDLE);
  const at = bytes.findIndex((b) => b > 0x7f);
  assert.is(at, -1, `non-ASCII at byte ${at}: ${bytes.subarray(Math.max(0, at - 60), at + 20).toString('utf8')}`);
});

for (const command of ['list', 'status']) {
  test(`pgbk ${command} --json on a local catalog does not load the zstd decoder`, () => {
    const catalog = path.join(dir, `catalog-${command}`);
    mkdirSync(catalog);
    const config = path.join(dir, `${command}.yaml`);
    writeFileSync(
      config,
      `catalog: ${catalog}\nservers:\n  main:\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2 }\n`,
    );
    // Preloaded into the CLI's process: at exit, the files Node's require() loaded (the decoder
    // module would be among them once catalog/zstd.ts is initialised, eagerly or not).
    const probe = path.join(dir, 'probe.cjs');
    writeFileSync(probe, `process.on('exit', () => process.stderr.write('\\nREQUIRED ' + JSON.stringify(Object.keys(require.cache)) + '\\n'));\n`);
    const cache = path.join(dir, `cache-${command}`);
    mkdirSync(cache);
    const env = { PATH: process.env['PATH'] ?? '', HOME: dir, XDG_CACHE_HOME: cache };
    for (const round of ['code cache absent', 'code cache used']) {
      const r = spawnSync(process.execPath, ['--require', probe, CLI, '--config', config, command, '--json'], { env, encoding: 'utf8' });
      assert.is(r.status, 0, `${round}: ${r.stderr}`);
      assert.ok(JSON.parse(r.stdout) !== undefined);
      const line = /\nREQUIRED (.*)\n/.exec(r.stderr);
      assert.ok(line !== null, r.stderr);
      const required = JSON.parse(line[1]!) as string[];
      assert.ok(
        required.some((f) => f.endsWith(path.join('cli', 'read-bundle-loader.cjs'))),
        `${round}: not run from the read bundle: ${required.join(', ')}`,
      );
      assert.not.ok(required.includes(WASM_MODULE), `${round}: the zstd decoder was loaded`);
    }
  });
}

test.run();
