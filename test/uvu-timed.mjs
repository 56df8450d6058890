#!/usr/bin/env node
// uvu's own runner (what `uvu <dir> <pattern>` does: uvu/parse, then uvu/run) with a stopwatch
// around each test file, so a slow suite shows which file is slow. All files still run in ONE
// process, in uvu's order, so per-process fixtures (the radosgw cluster of test/support/rgw.ts,
// clusters shared across a directory) are started once. Output streams as uvu writes it; the
// per-file table comes after uvu's summary. PGBK_TEST_TIMES=<file> also writes the table as JSON.
// PGBK_TEST_FILES limits the run to the files it names (see below).
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parse } from 'uvu/parse';

// pgbk's runtime directories under a TMPDIR of this run (dist/test/support/run-tmpdir.js says why).
await import('../dist/test/support/run-tmpdir.js');

const [dir, pattern] = process.argv.slice(2);
const ctx = await parse(dir, pattern);
// PGBK_TEST_FILES (newline-separated names as uvu lists them, e.g. "restore/pitr.test.js"): run
// only those, in uvu's order. test/run.mjs sets it when it splits a suite over several processes.
const only = process.env['PGBK_TEST_FILES'];
if (only !== undefined) {
  const keep = new Set(only.split('\n').filter((n) => n !== ''));
  ctx.suites = ctx.suites.filter((s) => keep.has(s.name));
}

globalThis.UVU_DEFER = 1;
const uvu = await import('uvu');

// uvu runs `before`/`after` hooks inside try/finally without a catch, and the finally's `return`
// swallows the hook's error: the file then shows only "(0 / N)". Print the error where it happens
// (the run still counts those tests as not passed). Files using `suite()` get fresh hook
// registrars per suite and are not covered; most files use the shared `test`.
for (const kind of ['before', 'after']) {
  const register = uvu.test[kind];
  const wrapped = (fn) =>
    register(async (state) => {
      try {
        await fn(state);
      } catch (err) {
        process.stdout.write(`\n  ${kind} hook failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        throw err;
      }
    });
  wrapped.each = register.each;
  uvu.test[kind] = wrapped;
}

/** @type {{ file: string, importMs: number, runMs: number, tests: number, passed: number }[]} */
const files = [];
let index = 0;
for (const suite of ctx.suites) {
  globalThis.UVU_INDEX = index++;
  globalThis.UVU_QUEUE.push([suite.name]);
  const t0 = performance.now();
  await import(pathToFileURL(suite.file).href); // top-level code of the file runs here
  files.push({ file: suite.name, importMs: performance.now() - t0, runMs: 0, tests: 0, passed: 0 });
}

// Each queue group is [file name, ...one runner per suite of that file]; a runner resolves to
// [errors, passed, skipped, total]. Wrap the runners to time and count them; the bracketing
// entries report nothing, so uvu's own totals are unchanged.
globalThis.UVU_QUEUE.forEach((group, i) => {
  const entry = files[i];
  if (entry === undefined) return;
  const runners = group.slice(1).map((runner) => async () => {
    const result = await runner();
    entry.passed += result[1];
    entry.tests += result[3];
    return result;
  });
  let started = 0;
  const nothing = ['', 0, 0, 0];
  group.splice(
    1,
    group.length - 1,
    async () => {
      started = performance.now();
      return nothing;
    },
    ...runners,
    async () => {
      entry.runMs = performance.now() - started;
      return nothing;
    },
  );
});

await uvu.exec(false);

const seconds = (ms) => (ms / 1000).toFixed(1).padStart(7);
const sorted = [...files].sort((a, b) => b.importMs + b.runMs - (a.importMs + a.runMs));
const total = files.reduce((sum, f) => sum + f.importMs + f.runMs, 0);
const lines = ['  Per file, slowest first (seconds; import = the file’s top-level code):'];
for (const f of sorted) {
  const failed = f.tests - f.passed;
  const imp = f.importMs >= 100 ? `  (import ${(f.importMs / 1000).toFixed(1)} s)` : '';
  lines.push(`  ${seconds(f.importMs + f.runMs)}  ${String(f.tests).padStart(3)} tests${failed > 0 ? ` ${failed} FAILING` : ''}  ${f.file}${imp}`);
}
lines.push(`  ${seconds(total)}  all ${files.length} files`);
process.stdout.write(`${lines.join('\n')}\n`);
if (process.env['PGBK_TEST_TIMES']) writeFileSync(process.env['PGBK_TEST_TIMES'], `${JSON.stringify(files, null, 2)}\n`);
