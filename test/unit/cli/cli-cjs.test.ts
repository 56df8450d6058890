/**
 * package.json's bin is dist/src/cli.cjs, dist/src/cli.js made CommonJS by scripts/bundle-read.mjs
 * (an ES module entry costs ~5 ms of Node's ES module loader at every start, issue 13 item 5). It
 * must behave as cli.js does: same output, errors and exit statuses, read commands from the read
 * bundle, every other command from the ES modules, a closed stdout ignored.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI_JS = path.join(ROOT, 'dist', 'src', 'cli.js');
const CLI_CJS = path.join(ROOT, 'dist', 'src', 'cli.cjs');

let dir: string;
let config: string;
let runs = 0;

test.before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-cli-cjs-'));
  mkdirSync(path.join(dir, 'catalog'));
  config = path.join(dir, 'pgbk.yaml');
  writeFileSync(
    config,
    `catalog: ${path.join(dir, 'catalog')}\nservers:\n  main:\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2 }\n`,
  );
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Run `entry` with a cache directory of its own: the read bundle, and only it, leaves its code cache there. */
function runEntry(entry: string, args: readonly string[]): { code: number | null; stdout: string; stderr: string; bundled: boolean } {
  const cache = path.join(dir, `cache-${++runs}`);
  mkdirSync(cache);
  const env = { PATH: process.env['PATH'] ?? '', HOME: dir, XDG_CACHE_HOME: cache };
  const r = spawnSync(process.execPath, [entry, ...args], { env, cwd: dir, encoding: 'utf8' });
  let files: string[] = [];
  try {
    files = readdirSync(path.join(cache, 'pgbk'));
  } catch {
    // no cache directory: nothing was cached
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, bundled: files.some((f) => f.startsWith('read-bundle-')) };
}

test('the package bin is dist/src/cli.cjs, a CommonJS script', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  assert.equal(pkg.bin, { pgbk: 'dist/src/cli.cjs' });
  const text = readFileSync(CLI_CJS, 'utf8');
  assert.ok(text.startsWith('#!/usr/bin/env node\n'));
  assert.not.match(text, /import\.meta|^\s*import\s/m);
});

for (const args of [['--version'], ['list', '--json'], ['list'], ['status', 'nosuch'], ['list', '--help'], ['validate'], ['show'], ['nosuchcommand']]) {
  test(`pgbk ${args.join(' ')}: cli.cjs as cli.js`, () => {
    const withConfig = args[0]!.startsWith('--') ? args : ['--config', config, ...args];
    const js = runEntry(CLI_JS, withConfig);
    const cjs = runEntry(CLI_CJS, withConfig);
    assert.is(cjs.code, js.code, cjs.stderr);
    assert.is(cjs.stdout, js.stdout);
    assert.is(cjs.stderr, js.stderr);
    assert.is(cjs.bundled, js.bundled, 'the read bundle ran for the one and not the other');
    assert.is(cjs.bundled, args[0] === 'list' || args[0] === 'status', 'only list and status run from the read bundle');
  });
}

test('status --json: cli.cjs as cli.js', () => {
  const js = runEntry(CLI_JS, ['--config', config, 'status', '--json']);
  const cjs = runEntry(CLI_CJS, ['--config', config, 'status', '--json']);
  assert.is(cjs.code, js.code, cjs.stderr);
  // The next backup's "in Nh" may turn between the two runs; the rest is the same.
  const names = (s: string) => (JSON.parse(s) as { servers: { server: string }[] }).servers.map((x) => x.server);
  assert.equal(names(cjs.stdout), names(js.stdout));
  assert.ok(cjs.bundled);
});

test('a reader that goes away ends the output quietly, with the command’s exit status', async () => {
  for (const args of [['--help'], ['--config', config, 'list'], ['nosuchcommand']]) {
    const child = spawn(process.execPath, [CLI_CJS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.not.match(stderr, /EPIPE|Unhandled|at /, `${args.join(' ')}: ${stderr}`);
    assert.is(code, args[0] === 'nosuchcommand' ? 1 : 0, `${args.join(' ')}: exit status`);
  }
});

test.run();
