/**
 * The read bundle's code cache (src/cli/read-bundle-loader.ts): written once after a run, used
 * while the bundle and Node.js are the same, and never handed to V8 damaged (V8 aborts the process
 * on damaged data). Runs a copy of the built bundle (dist/src/cli/read-bundle.cjs).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { loadReadBundle, READ_BUNDLE } from '../../../src/cli/read-bundle-loader.js';
import { damageTail } from '../../support/damage.js';

let dir: string;
let bundle: string;
let env: NodeJS.ProcessEnv;

test.before.each(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-code-cache-'));
  bundle = path.join(dir, 'read-bundle.cjs');
  copyFileSync(READ_BUNDLE, bundle);
  env = { HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache') };
  mkdirSync(path.join(dir, 'cache'));
});

test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

function entryFile(): string {
  const names = readdirSync(path.join(dir, 'cache', 'pgbk')).filter((n) => n.startsWith('read-bundle-'));
  assert.is(names.length, 1, names.join(', '));
  return path.join(dir, 'cache', 'pgbk', names[0]!);
}

function load(e: NodeJS.ProcessEnv = env) {
  const loaded = loadReadBundle(e, bundle);
  assert.ok(loaded !== undefined);
  assert.ok(loaded.bundle.isBundledCommand(['-c', 'x.yaml', 'list']), 'the bundle runs');
  return loaded;
}

test('written once after the first run, then used', () => {
  const first = load();
  assert.is(first.cache, 'absent');
  assert.ok(first.save());
  const second = load();
  assert.is(second.cache, 'used');
  assert.not.ok(second.save(), 'an entry in use is not rewritten');
});

test('another build of the bundle (a new file) is compiled afresh', () => {
  assert.ok(load().save());
  writeFileSync(bundle, readFileSync(bundle));
  utimesSync(bundle, new Date(), new Date(Date.now() + 5000));
  assert.is(load().cache, 'absent');
});

test('a damaged entry is not given to V8 (it would abort): compiled afresh and rewritten', () => {
  assert.ok(load().save());
  const file = entryFile();
  damageTail(file);
  const damaged = load();
  assert.is(damaged.cache, 'absent');
  assert.ok(damaged.save());
  assert.is(load().cache, 'used');
});

test('a cut entry is not used either', () => {
  assert.ok(load().save());
  const file = entryFile();
  writeFileSync(file, readFileSync(file).subarray(0, 1000));
  assert.is(load().cache, 'absent');
});

test('an entry others may write is not trusted', () => {
  assert.ok(load().save());
  chmodSync(entryFile(), 0o666);
  assert.is(load().cache, 'absent');
});

test('PGBK_NO_CACHE=1: no cache read or written', () => {
  const off = load({ ...env, PGBK_NO_CACHE: '1' });
  assert.is(off.cache, 'off');
  assert.not.ok(off.save());
  assert.is(load().cache, 'absent');
});

/** `pgbk list` in an empty directory through the built bundle: configuration discovery loads cosmiconfig on demand. */
async function listWithoutConfig(e: NodeJS.ProcessEnv): Promise<{ cache: string; code: number; stderr: string }> {
  const loaded = loadReadBundle(e);
  assert.ok(loaded !== undefined);
  let stderr = '';
  const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await loaded.bundle.runBundled(['list'], { stdout: new PassThrough(), stderr: err, env: e, cwd: dir, isTTY: false });
  loaded.save();
  return { cache: loaded.cache, code, stderr };
}

test('from the code cache, the bundle still loads packages on demand (no import() in it)', async () => {
  const first = await listWithoutConfig(env);
  const second = await listWithoutConfig(env);
  assert.equal([first.cache, second.cache], ['absent', 'used']);
  assert.is(second.code, first.code);
  assert.is(second.stderr, first.stderr);
  assert.match(first.stderr, /config/i);
  assert.not.match(first.stderr, /dynamic import|internal error/);
});

test('no bundle (run from the sources): undefined', () => {
  assert.is(loadReadBundle(env, path.join(dir, 'missing.cjs')), undefined);
});

test.run();
