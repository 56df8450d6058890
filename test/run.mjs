#!/usr/bin/env node
// Runs the compiled test suites with uvu (dist/test/<suite>), one uvu process per suite so an
// integration suite's servers cannot leak into the unit run, then prints the plain closing line
// "N passed, N failed" that CI counts. A suite that ran no test is a failure: uvu itself exits 0
// when its pattern matches nothing. uvu runs through test/uvu-timed.mjs, which streams its output
// as the tests run and ends each suite with a per-file duration table.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runner = path.join(root, 'test', 'uvu-timed.mjs');
const wanted = process.argv.slice(2);
const suites = wanted.length > 0 ? wanted : ['unit', 'integration'];

/** Run one suite, copying its stdout through as it comes while keeping it for the counts. */
function runSuite(dir) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runner, dir, '\\.test\\.js$'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      process.stdout.write(chunk);
    });
    child.on('error', (err) => {
      console.error(`test runner: ${err.message}`);
      resolve({ status: 1, stdout });
    });
    child.on('close', (code) => resolve({ status: code ?? 1, stdout }));
  });
}

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
  const r = await runSuite(dir);
  const total = Number(/Total:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
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
