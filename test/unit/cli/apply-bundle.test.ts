/**
 * Session 19: `apply` and `backup` run from dist/src/cli/apply-bundle.cjs
 * (src/cli/apply-bundle-entry.ts, scripts/bundle-read.mjs) with a V8 code cache, with the same
 * output, errors and exit statuses as from the ES modules, cache or not. (Whole backups from the
 * bundle: the backup integration tests, which run the built CLI.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { APPLY_LOADERS, isBundledCommand } from '../../../src/cli/apply-bundle-entry.js';
import { runCli } from './run-cli.js';

const CLI = fileURLToPath(new URL('../../../src/cli.js', import.meta.url));

let dir: string;
let config: string;
let env: NodeJS.ProcessEnv;

test.before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-apply-bundle-'));
  mkdirSync(path.join(dir, 'catalog'));
  config = path.join(dir, 'pgbk.yaml');
  writeFileSync(
    config,
    `catalog: ${path.join(dir, 'catalog')}\nservers:\n  main:\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2 }\n`,
  );
  env = { PATH: process.env['PATH'] ?? '', HOME: dir };
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let runs = 0;

/** Run the built CLI with `cache` as XDG_CACHE_HOME (a new directory unless given). */
function spawnCli(args: readonly string[], cache = path.join(dir, `cache-${++runs}`), extra: NodeJS.ProcessEnv = {}) {
  mkdirSync(cache, { recursive: true });
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...env, XDG_CACHE_HOME: cache, ...extra }, encoding: 'utf8' });
  let files: string[] = [];
  try {
    files = readdirSync(path.join(cache, 'pgbk'));
  } catch {
    // no cache directory
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, bundleFiles: files.filter((f) => f.startsWith('apply-bundle-')), files };
}

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
    const withConfig = [...args, '--config', config];
    const spawned = spawnCli(withConfig);
    assert.is(spawned.bundleFiles.length, 1, `not run from apply-bundle.cjs:\n${spawned.stderr}`);
    const inProcess = await runCli(withConfig, { env, cwd: dir });
    assert.is(spawned.code, inProcess.code, spawned.stderr);
    // Log lines start with their time.
    const untimed = (t: string): string => t.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /gm, '');
    assert.is(untimed(spawned.stderr), untimed(inProcess.stderr));
    assert.is(spawned.stdout, inProcess.stdout);
  });
}

test('apply from the code cache and without one runs the same', () => {
  const args = ['apply', '--config', config];
  const cache = path.join(dir, 'cache-shared');
  const first = spawnCli(args, cache);
  const second = spawnCli(args, cache);
  const off = spawnCli(args, path.join(dir, 'cache-off'), { PGBK_NO_CACHE: '1' });
  for (const r of [second, off]) {
    assert.is(r.code, first.code, r.stderr);
    assert.not.match(r.stderr, /internal error/);
  }
  assert.equal(off.files, []);
});

test.run();
