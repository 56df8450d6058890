#!/usr/bin/env node
// Runs the compiled test suites with uvu (dist/test/<suite>), one uvu process per suite so an
// integration suite's servers cannot leak into the unit run, then prints the plain closing line
// "N passed, N failed" that CI counts. A suite that ran no test is a failure: uvu itself exits 0
// when its pattern matches nothing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const uvu = path.join(root, 'node_modules', 'uvu', 'bin.js');
const wanted = process.argv.slice(2);
const suites = wanted.length > 0 ? wanted : ['unit', 'integration'];

let passed = 0;
let failed = 0;
let problems = 0;
for (const suite of suites) {
  const dir = path.join('dist', 'test', suite);
  if (!existsSync(path.join(root, dir))) {
    console.error(`test suite ${suite}: ${dir} does not exist (did the build run?)`);
    problems++;
    continue;
  }
  console.log(`\n=== ${suite} ===`);
  const r = spawnSync(process.execPath, [uvu, dir, '\\.test\\.js$'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  process.stdout.write(r.stdout ?? '');
  const total = Number(/Total:\s+(\d+)/.exec(r.stdout ?? '')?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(r.stdout ?? '')?.[1] ?? 0);
  if (total === 0) {
    console.error(`test suite ${suite}: no test ran`);
    problems++;
  }
  passed += ok;
  failed += total - ok;
  if (r.status !== 0 && total === ok) problems++; // crashed outside a test
}
console.log(`\n${passed} passed, ${failed + problems} failed`);
process.exit(failed + problems === 0 ? 0 : 1);
