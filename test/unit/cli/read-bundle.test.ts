/**
 * Issue 13 item 5: `list` and `status` run from dist/src/cli/read-bundle.cjs (src/cli/read-entry.ts,
 * scripts/bundle-read.mjs), with the same output, errors and exit statuses as the ES modules the
 * other commands run from (driven here in-process through dispatch.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isBundledCommand, READ_LOADERS } from '../../../src/cli/read-entry.js';
import { runCli } from './run-cli.js';

const CLI = fileURLToPath(new URL('../../../src/cli.js', import.meta.url));

let dir: string;
let config: string;
let env: NodeJS.ProcessEnv;

test.before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-read-bundle-'));
  mkdirSync(path.join(dir, 'catalog'));
  config = path.join(dir, 'pgbk.yaml');
  writeFileSync(
    config,
    `catalog: ${path.join(dir, 'catalog')}\nservers:\n  main:\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2 }\n`,
  );
  env = { PATH: process.env['PATH'] ?? '', HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache') };
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let runs = 0;

/** Run the built CLI with a cache directory of its own: the bundle, and only it, leaves its code cache there. */
function spawnCli(args: readonly string[]): { code: number | null; stdout: string; stderr: string; bundled: boolean } {
  const cache = path.join(dir, `cache-${++runs}`);
  mkdirSync(cache);
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...env, XDG_CACHE_HOME: cache }, encoding: 'utf8' });
  let files: string[] = [];
  try {
    files = readdirSync(path.join(cache, 'pgbk'));
  } catch {
    // no cache directory: nothing was cached
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, bundled: files.some((f) => f.startsWith('read-bundle-')) };
}

test('the read entry runs list and status, found as the dispatcher finds a command', () => {
  assert.equal(Object.keys(READ_LOADERS).sort(), ['list', 'status']);
  assert.ok(isBundledCommand(['-c', 'x.yaml', '--json', 'list']));
  assert.ok(isBundledCommand(['status', 'main']));
  assert.not.ok(isBundledCommand(['show', 'list']), 'a server named list');
  assert.not.ok(isBundledCommand(['--config', 'status', 'plan']), 'a config file named status');
  assert.not.ok(isBundledCommand([]));
});

for (const args of [
  ['list', '--json'],
  ['--config', '-', 'list'],
  ['list', '--bogus'],
  ['status', 'nosuch'],
  ['list', '--help'],
  ['-c', '-', '--log-format', 'text', 'status', '--json'],
]) {
  test(`pgbk ${args.join(' ')}: from the bundle, as from the ES modules`, async () => {
    const withConfig = args.includes('-') ? args.map((a) => (a === '-' ? config : a)) : [...args, '--config', config];
    const spawned = spawnCli(withConfig);
    assert.ok(spawned.bundled, `not run from read-bundle.cjs:\n${spawned.stderr}`);
    const inProcess = await runCli(withConfig, { env, cwd: dir });
    assert.is(spawned.code, inProcess.code, spawned.stderr);
    assert.is(spawned.stderr, inProcess.stderr);
    if (args.includes('status') && args.includes('--json')) {
      // The next backup's "in Nh" may turn between the two runs; the rest is the same.
      const names = (s: string) => (JSON.parse(s) as { servers: { server: string }[] }).servers.map((x) => x.server);
      assert.equal(names(spawned.stdout), names(inProcess.stdout));
    } else {
      assert.is(spawned.stdout, inProcess.stdout);
    }
  });
}

test('other commands do not load the bundle', () => {
  const r = spawnCli(['validate', '--config', config]);
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(r.bundled);
});

test('a command whose arguments only mention list runs as before (from the ES modules)', async () => {
  const args = ['show', 'list', '--config', config];
  const spawned = spawnCli(args);
  const inProcess = await runCli(args, { env, cwd: dir });
  assert.not.ok(spawned.bundled);
  assert.is(spawned.code, inProcess.code);
  assert.is(spawned.stderr, inProcess.stderr);
  assert.is(spawned.stdout, inProcess.stdout);
});

test.run();
