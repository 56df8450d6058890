/**
 * Session 19: `apply` and `backup` run from dist/src/cli/apply-bundle.cjs
 * (src/cli/apply-bundle-entry.ts, scripts/bundle-read.mjs) with a V8 code cache, with the same
 * output, errors and exit statuses as from the ES modules, cache or not. (Whole backups from the
 * bundle: the backup integration tests, which run the built CLI.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { APPLY_LOADERS, isBundledCommand } from '../../../src/cli/apply-bundle-entry.js';
import { BundleWorld } from './bundle-world.js';
import { runCli } from './run-cli.js';

const world = new BundleWorld('apply-bundle');
test.before(() => world.setUp());
test.after(() => world.tearDown());

test('the apply entry runs apply and backup only, found as the dispatcher finds a command', () => {
  assert.equal(Object.keys(APPLY_LOADERS), ['apply', 'backup']);
  assert.ok(isBundledCommand(['-c', 'x.yaml', 'apply']));
  assert.ok(isBundledCommand(['backup', 'main']));
  assert.not.ok(isBundledCommand(['show', 'backup']), 'a server named backup');
  assert.not.ok(isBundledCommand(['--config', 'apply', 'plan']), 'a config file named apply');
  assert.not.ok(isBundledCommand([]));
});

const CASES: readonly (readonly string[])[] = [['apply'], ['apply', '--help'], ['apply', '--bogus'], ['backup', 'nosuch'], ['backup', 'main', '--help']];

for (const args of CASES) {
  test(`pgbk ${args.join(' ')}: from the bundle, as from the ES modules`, async () => {
    const withConfig = [...args, '--config', world.config];
    const spawned = world.spawn(withConfig);
    assert.is(spawned.bundleFiles.length, 1, `not run from apply-bundle.cjs:\n${spawned.stderr}`);
    const inProcess = await runCli(withConfig, { env: world.env, cwd: world.dir });
    assert.is(spawned.code, inProcess.code, spawned.stderr);
    // Log lines start with their time.
    const untimed = (t: string): string => t.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /gm, '');
    assert.is(untimed(spawned.stderr), untimed(inProcess.stderr));
    assert.is(spawned.stdout, inProcess.stdout);
  });
}

test('apply from the code cache and without one runs the same', () => {
  const args = ['apply', '--config', world.config];
  const cache = path.join(world.dir, 'cache-shared');
  const first = world.spawn(args, cache);
  const second = world.spawn(args, cache);
  const off = world.spawn(args, path.join(world.dir, 'cache-off'), { PGBK_NO_CACHE: '1' });
  for (const r of [second, off]) {
    assert.is(r.code, first.code, r.stderr);
    assert.not.match(r.stderr, /internal error/);
  }
  assert.equal(off.files, []);
});

test.run();
