/**
 * Session 19: `restore` runs from dist/src/cli/restore-bundle.cjs (src/cli/restore-bundle-entry.ts,
 * scripts/bundle-read.mjs) with a V8 code cache, with the same output, errors and exit statuses as
 * from the ES modules; without a usable cache (none yet, stale, damaged, unwritable, turned off) it
 * runs the same. (A whole restore from the bundle: the restore integration tests, which run the
 * built CLI.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadReadBundle, RESTORE_BUNDLE } from '../../../src/cli/read-bundle-loader.js';
import { isBundledCommand, RESTORE_LOADERS } from '../../../src/cli/restore-bundle-entry.js';
import { BundleWorld } from './bundle-world.js';
import { runCli } from './run-cli.js';
import { damageTail } from '../../support/damage.js';

const world = new BundleWorld('restore-bundle');
test.before(() => world.setUp());
test.after(() => world.tearDown());

test('the restore entry runs restore only, found as the dispatcher finds a command', () => {
  assert.equal(Object.keys(RESTORE_LOADERS), ['restore']);
  assert.ok(isBundledCommand(['-c', 'x.yaml', 'restore', 'main']));
  assert.not.ok(isBundledCommand(['show', 'restore']), 'a server named restore');
  assert.not.ok(isBundledCommand(['--config', 'restore', 'plan']), 'a config file named restore');
  assert.not.ok(isBundledCommand([]));
});

const CASES: readonly (readonly string[])[] = [
  ['restore', 'main', '--to', 'TARGET'],
  ['restore', 'nosuch', '--to', 'TARGET'],
  ['restore', 'main'],
  ['restore', 'main', 'latest', '--to', 'TARGET', '--target-time', 'not a time'],
  ['restore', '--help'],
  ['restore', 'main', '--bogus'],
];

for (const args of CASES) {
  test(`pgbk ${args.join(' ')}: from the bundle, as from the ES modules`, async () => {
    const withConfig = [...args.map((a) => (a === 'TARGET' ? path.join(world.dir, 'target') : a)), '--config', world.config];
    const spawned = world.spawn(withConfig);
    assert.is(spawned.bundleFiles.length, 1, `not run from restore-bundle.cjs:\n${spawned.stderr}`);
    const inProcess = await runCli(withConfig, { env: world.env, cwd: world.dir });
    assert.is(spawned.code, inProcess.code, spawned.stderr);
    assert.is(spawned.stderr, inProcess.stderr);
    assert.is(spawned.stdout, inProcess.stdout);
  });
}

test('the same run from the code cache, without one (PGBK_NO_CACHE=1), and with an unusable cache directory', () => {
  const args = ['restore', 'main', '--to', path.join(world.dir, 'target'), '--config', world.config];
  const cache = path.join(world.dir, 'cache-shared');
  const first = world.spawn(args, cache);
  const second = world.spawn(args, cache);
  const off = world.spawn(args, path.join(world.dir, 'cache-off'), { PGBK_NO_CACHE: '1' });
  // A file where the cache directory would be: no cache, nothing written, the command runs.
  const blocked = path.join(world.dir, 'cache-blocked');
  mkdirSync(blocked);
  writeFileSync(path.join(blocked, 'pgbk'), 'not a directory');
  const unusable = world.spawn(args, blocked);
  for (const [what, r] of [
    ['from the cache', second],
    ['PGBK_NO_CACHE=1', off],
    ['unusable cache directory', unusable],
  ] as const) {
    assert.is(r.code, first.code, `${what}: ${r.stderr}`);
    assert.is(r.stderr, first.stderr, what);
    assert.is(r.stdout, first.stdout, what);
    assert.not.match(r.stderr, /internal error/, what);
  }
  assert.equal(off.files, [], 'PGBK_NO_CACHE=1 writes nothing');
  assert.is(readFileSync(path.join(blocked, 'pgbk'), 'utf8'), 'not a directory');
});

test('a command that only mentions restore runs as before (from the ES modules)', async () => {
  const args = ['show', 'restore', '--config', world.config];
  const spawned = world.spawn(args);
  const inProcess = await runCli(args, { env: world.env, cwd: world.dir });
  assert.is(spawned.bundleFiles.length, 0);
  assert.is(spawned.code, inProcess.code);
  assert.is(spawned.stderr, inProcess.stderr);
  assert.is(spawned.stdout, inProcess.stdout);
});

test("the restore bundle's code cache: written once, used, compiled afresh for another build or a damaged entry", () => {
  const copyDir = path.join(world.dir, 'copy');
  mkdirSync(copyDir);
  const bundle = path.join(copyDir, 'restore-bundle.cjs');
  copyFileSync(RESTORE_BUNDLE, bundle);
  const e = { HOME: world.dir, XDG_CACHE_HOME: path.join(copyDir, 'cache') };
  mkdirSync(e.XDG_CACHE_HOME);
  const load = () => {
    const loaded = loadReadBundle(e, bundle, 'restore-bundle');
    assert.ok(loaded !== undefined);
    assert.ok(loaded.bundle.isBundledCommand(['restore', 'main']), 'the bundle runs');
    return loaded;
  };
  const first = load();
  assert.is(first.cache, 'absent');
  assert.ok(first.save());
  assert.is(load().cache, 'used');
  const entry = path.join(copyDir, 'cache', 'pgbk', readdirSync(path.join(copyDir, 'cache', 'pgbk')).find((n) => n.startsWith('restore-bundle-'))!);
  damageTail(entry);
  const damaged = load();
  assert.is(damaged.cache, 'absent');
  assert.ok(damaged.save());
  assert.is(load().cache, 'used');
  utimesSync(bundle, new Date(), new Date(Date.now() + 5000));
  assert.is(load().cache, 'absent', 'stale: another build');
});

test.run();
