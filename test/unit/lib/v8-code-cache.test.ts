/**
 * lib/v8-code-cache.ts with the file it serves in production: the AWS SDK bundled by
 * scripts/bundle-sdk.mjs (dist/src/catalog/s3/sdk-bundle.cjs, copied). Written once after a run,
 * used while the file and Node.js are the same, never handed to V8 damaged (V8 aborts the process
 * on damaged data), and the SDK from the cache still loads its lazily required parts (no import()).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as SdkModule from '@aws-sdk/client-s3';
import { loadCommonJsCached } from '../../../src/lib/v8-code-cache.js';
import { damageTail } from '../../support/damage.js';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
const BUILT = fileURLToPath(new URL('../../../src/catalog/s3/sdk-bundle.cjs', import.meta.url));
let dir: string;
let file: string;
let env: NodeJS.ProcessEnv;

test.before.each(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-v8-cache-'));
  file = path.join(dir, 'sdk-bundle.cjs');
  copyFileSync(BUILT, file);
  env = { HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache') };
  mkdirSync(path.join(dir, 'cache'));
});

test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

function entryFile(): string {
  const names = readdirSync(path.join(dir, 'cache', 'pgbk')).filter((n) => n.startsWith('s3-sdk-'));
  assert.is(names.length, 1, names.join(', '));
  return path.join(dir, 'cache', 'pgbk', names[0]!);
}

function load(e: NodeJS.ProcessEnv = env) {
  const loaded = loadCommonJsCached<typeof SdkModule>(file, e, 's3-sdk');
  assert.ok(loaded !== undefined);
  assert.is(typeof loaded.exports.S3Client, 'function', 'the SDK loads');
  return loaded;
}

test('written once after the first run, then used', () => {
  const first = load();
  assert.is(first.cache, 'absent');
  assert.ok(first.save());
  assert.not.ok(first.save(), 'saved once');
  const second = load();
  assert.is(second.cache, 'used');
  assert.not.ok(second.save(), 'an entry in use is not rewritten');
});

test('another build of the file is compiled afresh', () => {
  assert.ok(load().save());
  writeFileSync(file, readFileSync(file));
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  assert.is(load().cache, 'absent');
});

test('a damaged or cut entry is not given to V8 (it would abort): compiled afresh and rewritten', () => {
  assert.ok(load().save());
  const entry = entryFile();
  damageTail(entry);
  const damaged = load();
  assert.is(damaged.cache, 'absent');
  assert.ok(damaged.save());
  assert.is(load().cache, 'used');
  writeFileSync(entry, readFileSync(entry).subarray(0, 1000));
  assert.is(load().cache, 'absent');
});

test('an entry others may write is not trusted; PGBK_NO_CACHE=1 reads and writes none', () => {
  assert.ok(load().save());
  chmodSync(entryFile(), 0o666);
  assert.is(load().cache, 'absent');
  const off = load({ ...env, PGBK_NO_CACHE: '1' });
  assert.is(off.cache, 'off');
  assert.not.ok(off.save());
});

test('from the cache, the SDK still loads its credential providers on demand (no import() in the bundle)', async () => {
  const creds = { ...env, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' };
  const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
  process.env['AWS_ACCESS_KEY_ID'] = creds.AWS_ACCESS_KEY_ID;
  process.env['AWS_SECRET_ACCESS_KEY'] = creds.AWS_SECRET_ACCESS_KEY;
  try {
    for (const expected of ['absent', 'used']) {
      const loaded = load();
      assert.is(loaded.cache, expected);
      const client = new loaded.exports.S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' });
      const c = await client.config.credentials();
      assert.is(c.accessKeyId, 'AKIDEXAMPLE');
      client.destroy();
      loaded.save();
    }
  } finally {
    if (saved.id === undefined) delete process.env['AWS_ACCESS_KEY_ID'];
    else process.env['AWS_ACCESS_KEY_ID'] = saved.id;
    if (saved.secret === undefined) delete process.env['AWS_SECRET_ACCESS_KEY'];
    else process.env['AWS_SECRET_ACCESS_KEY'] = saved.secret;
  }
});

test('no file: undefined', () => {
  assert.is(loadCommonJsCached(path.join(dir, 'missing.cjs'), env, 's3-sdk'), undefined);
});

test.run();
