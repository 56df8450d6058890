#!/usr/bin/env node
// Runs the compiled test suites with uvu (dist/test/<suite>), one uvu process per suite so an
// integration suite's servers cannot leak into the unit run, then prints the plain closing line
// "N passed, N failed" that CI counts. A suite that ran no test is a failure: uvu itself exits 0
// when its pattern matches nothing. uvu runs through test/uvu-timed.mjs, which streams its output
// as the tests run and ends each suite with a per-file duration table.
//
// --jobs N (or PGBK_TEST_JOBS=N; default 1): N lanes side by side, each one uvu process over its
// share of the work. Every integration file that starts PostgreSQL or radosgw (it imports
// test/support/postgres.ts or rgw.ts, itself or through a helper) is HEAVY unless it declares
// otherwise: heavy files stay in ONE lane, one file after another, because two PostgreSQL workloads
// at once on two cores make timing-sensitive tests (pgbench, chaos, crash, daemon timing, drill time
// limits, WAL waits, replay) flaky. A file declares itself light with a comment among its first
// lines,
//     // test-lane: light — <why: no timing bound a busy neighbour could break>
// and is then dealt on its own to any lane, beside the heavy ones (the unit suite and files that
// start neither server are light by nature). New files are heavy until someone reviews them. Each
// lane is one uvu process, so each lane that runs a radosgw file starts its own radosgw (rgw.ts
// starts one per process on free ports). Work is dealt longest first by
// test/integration-seconds.json (seconds per file from a full --jobs 2 run; a file missing
// there counts as DEFAULT_SECONDS). Lines of a lane are prefixed with its number; the closing
// per-file table covers all lanes.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runner = path.join(root, 'test', 'uvu-timed.mjs');
const PATTERN = '\\.test\\.js$';
const DEFAULT_SECONDS = 10;
/** How long after uvu exits its output may stay open (buffered lines draining) before a leak is reported. */
const LEFT_RUNNING_GRACE_MS = 10_000;
/** The unit suite as one item of the plan (it takes under a minute). */
const UNIT_SECONDS = 45;

const argv = process.argv.slice(2);
let jobs = Number(process.env['PGBK_TEST_JOBS'] ?? 1);
/** --plan: print how the files would be dealt to the lanes, run nothing. */
let planOnly = false;
/** --only REGEX: integration files whose name matches (e.g. '^(ssh|transport)/'), for trying a deal. */
let only;
const wanted = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--jobs') jobs = Number(argv[++i]);
  else if (argv[i]?.startsWith('--jobs=')) jobs = Number(argv[i].slice('--jobs='.length));
  else if (argv[i] === '--plan') planOnly = true;
  else if (argv[i] === '--only') only = new RegExp(argv[++i] ?? '', 'i');
  else wanted.push(argv[i]);
}
if (!Number.isInteger(jobs) || jobs < 1) {
  console.error(`test runner: --jobs must be a whole number >= 1, not ${jobs}`);
  process.exit(2);
}
const suites = wanted.length > 0 ? wanted : ['unit', 'integration'];

/**
 * Run one uvu process over `dir` (optionally only `files`), copying its stdout through as it
 * comes — whole lines with `prefix` when lanes run side by side — while keeping it for the counts.
 */
function runUvu(dir, { files, prefix = '', timesFile } = {}) {
  return new Promise((resolve) => {
    const env = { ...process.env, FORCE_COLOR: '0' };
    // The tests reach nothing but loopback and give radosgw's CA as `caFile`: an environment's
    // NODE_EXTRA_CA_CERTS (this sandbox sets one) only makes each of the suite's thousands of Node
    // starts parse the whole CA bundle first (~50 ms of CPU each on the CI machine).
    // The one test that reaches beyond loopback (package/install: npm resolves the tarball's
    // dependencies from the registry, through whatever TLS proxy the environment's CA vouches for)
    // gets it back for npm alone under this name.
    if (env['NODE_EXTRA_CA_CERTS'] !== undefined) env['PGBK_TEST_REGISTRY_CA'] = env['NODE_EXTRA_CA_CERTS'];
    delete env['NODE_EXTRA_CA_CERTS'];
    if (files !== undefined) env['PGBK_TEST_FILES'] = files.join('\n');
    if (timesFile !== undefined) env['PGBK_TEST_TIMES'] = timesFile;
    const child = spawn(process.execPath, [runner, dir, PATTERN], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env });
    let stdout = '';
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (prefix === '') {
        process.stdout.write(chunk);
        return;
      }
      pending += chunk;
      const cut = pending.lastIndexOf('\n');
      if (cut < 0) return;
      process.stdout.write(`${pending.slice(0, cut).replace(/^/gm, prefix)}\n`);
      pending = pending.slice(cut + 1);
    });
    let finished = false;
    const finish = (status) => {
      if (finished) return;
      finished = true;
      if (pending !== '') process.stdout.write(`${prefix}${pending}\n`);
      resolve({ status, stdout });
    };
    child.on('error', (err) => {
      console.error(`test runner: ${err.message}`);
      finish(1);
    });
    // 'close' comes once every holder of uvu's stdout has closed it: a process a test started and
    // did not stop keeps it open, and the lane would wait for it forever. uvu's own exit bounds
    // the wait; what is still holding the pipe then is reported and fails the run (tests stop
    // what they start).
    child.on('exit', (code) => {
      setTimeout(() => {
        if (finished) return;
        console.error(`test runner: ${prefix}uvu exited (${code}) but a process it started still holds its output open: a test left it running`);
        finish(1);
        child.stdout.destroy();
      }, LEFT_RUNNING_GRACE_MS).unref();
    });
    child.on('close', (code) => finish(code ?? 1));
  });
}

/** Totals of one uvu run as the closing line counts them. */
function counts(r) {
  const total = Number(/Total:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  return { total, ok, crashed: r.status !== 0 && total === ok };
}

function suiteDir(suite) {
  const dir = path.join('dist', 'test', suite);
  if (existsSync(path.join(root, dir))) return dir;
  console.error(`test suite ${suite}: ${dir} does not exist (did the build run?)`);
  return undefined;
}

let passed = 0;
let failed = 0;
let problems = 0;

function account(suite, runs) {
  let total = 0;
  for (const r of runs) {
    const c = counts(r);
    total += c.total;
    passed += c.ok;
    failed += c.total - c.ok;
    if (c.crashed) problems++; // crashed outside a test
  }
  if (total === 0) {
    console.error(`test suite ${suite}: no test ran`);
    problems++;
  }
}

// ---------------------------------------------------------------------------------------------
// Lanes.

/** Test files under `dir` as uvu names them ("restore/pitr.test.js"), sorted like uvu. */
function listTests(dir) {
  const out = [];
  const walk = (rel) => {
    for (const e of readdirSync(path.join(root, dir, rel), { withFileTypes: true })) {
      const name = path.join(rel, e.name);
      if (e.isDirectory()) walk(name);
      else if (new RegExp(PATTERN, 'i').test(name)) out.push(name);
    }
  };
  walk('');
  return out.sort((a, b) => a.localeCompare(b));
}

/** Whether a compiled file imports support/<module>, itself or through a module of the test tree. */
function usesSupport(file, module, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = path.resolve(path.dirname(file), m[1]);
    if (target.endsWith(`${path.sep}support${path.sep}${module}`)) return true;
    if (target.startsWith(path.join(root, 'dist', 'test')) && usesSupport(target, module, seen)) return true;
  }
  return false;
}

const LANE_MARK = /^\s*\/\/\s*test-lane:\s*(\S+)\s*(.*)$/;
/** How many leading lines of a test file may hold its `// test-lane:` declaration. */
const LANE_MARK_LINES = 5;

/**
 * The lane class a test file declares (`// test-lane: light — reason` among its first lines of the
 * TypeScript source, or of the compiled file when the source is absent), or undefined. A bad
 * declaration (unknown class, no reason) stops the runner naming the file and line: a typo must not
 * silently make a file heavy or light.
 */
function declaredLane(dir, file) {
  const ts = path.join(root, 'test', path.relative(path.join('dist', 'test'), dir), file.replace(/\.js$/, '.ts'));
  const source = existsSync(ts) ? ts : path.join(root, dir, file);
  let lines;
  try {
    lines = readFileSync(source, 'utf8').split('\n').slice(0, LANE_MARK_LINES);
  } catch {
    return undefined;
  }
  for (const [i, line] of lines.entries()) {
    const m = LANE_MARK.exec(line);
    if (m === null) continue;
    const where = `${path.relative(root, source)}:${i + 1}`;
    if (m[1] !== 'light' && m[1] !== 'heavy') {
      console.error(`test runner: ${where}: test-lane must be light or heavy, not "${m[1]}"`);
      process.exit(2);
    }
    if (m[2].replace(/^[-—:\s]+/, '') === '') {
      console.error(`test runner: ${where}: test-lane: ${m[1]} needs a reason after it (why it may or may not share the machine)`);
      process.exit(2);
    }
    return m[1];
  }
  return undefined;
}

function weights() {
  try {
    return JSON.parse(readFileSync(path.join(root, 'test', 'integration-seconds.json'), 'utf8'));
  } catch {
    return {};
  }
}

/** Deal the work to `n` lanes, longest first, each item to the lane with the least so far. */
function plan(n, withUnit, integrationDir) {
  const secs = weights();
  const files = listTests(integrationDir).filter((f) => only === undefined || only.test(f));
  // Heavy files (see the header) form ONE item, so they run one after another in one lane; light
  // files are items of their own, dealt beside them like the unit suite.
  const heavy = (f) =>
    declaredLane(integrationDir, f) !== 'light' &&
    (usesSupport(path.join(root, integrationDir, f), 'postgres.js') || usesSupport(path.join(root, integrationDir, f), 'rgw.js'));
  const heavyFiles = files.filter(heavy);
  const items = files.filter((f) => !heavyFiles.includes(f)).map((f) => ({ files: [f], seconds: secs[f] ?? DEFAULT_SECONDS }));
  if (heavyFiles.length > 0) items.push({ files: heavyFiles, seconds: heavyFiles.reduce((s, f) => s + (secs[f] ?? DEFAULT_SECONDS), 0) });
  if (withUnit) items.push({ unit: true, files: [], seconds: UNIT_SECONDS });
  items.sort((a, b) => b.seconds - a.seconds);
  const lanes = Array.from({ length: n }, () => ({ unit: false, files: [], seconds: 0 }));
  for (const item of items) {
    const lane = lanes.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    if (item.unit) lane.unit = true;
    lane.files.push(...item.files);
    lane.seconds += item.seconds;
  }
  for (const lane of lanes) lane.files.sort((a, b) => a.localeCompare(b));
  return lanes;
}

async function runLanes(n) {
  const withUnit = suites.includes('unit');
  const unitDir = withUnit ? suiteDir('unit') : undefined;
  const integrationDir = suiteDir('integration');
  if ((withUnit && unitDir === undefined) || integrationDir === undefined) {
    problems++;
    return;
  }
  const lanes = plan(n, withUnit, integrationDir);
  const secs = weights();
  console.log(`\n=== ${withUnit ? 'unit + ' : ''}integration in ${n} lanes ===`);
  lanes.forEach((lane, i) => {
    console.log(
      `lane ${i + 1}: ${lane.unit ? 'unit suite, then ' : ''}${lane.files.length} integration files (~${lane.seconds} s by test/integration-seconds.json)`,
    );
    if (planOnly) console.log(`  ${lane.files.map((f) => `${f}${secs[f] === undefined ? '' : ` (${secs[f]} s)`}`).join('\n  ')}`);
  });
  if (planOnly) process.exit(0);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgbk-test-times-'));
  const unitRuns = [];
  const integrationRuns = [];
  const laneSeconds = [];
  await Promise.all(
    lanes.map(async (lane, i) => {
      const t0 = Date.now();
      const prefix = `[${i + 1}] `;
      if (lane.unit && unitDir !== undefined) unitRuns.push(await runUvu(unitDir, { prefix, timesFile: path.join(tmp, `unit-${i}.json`) }));
      if (lane.files.length > 0)
        integrationRuns.push(await runUvu(integrationDir, { files: lane.files, prefix, timesFile: path.join(tmp, `integration-${i}.json`) }));
      laneSeconds[i] = (Date.now() - t0) / 1000;
    }),
  );
  if (withUnit) account('unit', unitRuns);
  account('integration', integrationRuns);

  // One per-file table over all lanes (each lane printed its own as it ended).
  const rows = [];
  lanes.forEach((_, i) => {
    try {
      for (const f of JSON.parse(readFileSync(path.join(tmp, `integration-${i}.json`), 'utf8'))) rows.push({ ...f, lane: i + 1 });
    } catch {
      // that lane crashed before writing its table: its output above says why
    }
  });
  rmSync(tmp, { recursive: true, force: true });
  rows.sort((a, b) => b.importMs + b.runMs - (a.importMs + a.runMs));
  const lines = ['\n  Integration files over all lanes, slowest first (seconds):'];
  for (const f of rows) {
    const bad = f.tests - f.passed;
    lines.push(
      `  ${((f.importMs + f.runMs) / 1000).toFixed(1).padStart(7)}  lane ${f.lane}  ${String(f.tests).padStart(3)} tests${bad > 0 ? ` ${bad} FAILING` : ''}  ${f.file}`,
    );
  }
  const sum = rows.reduce((s, f) => s + f.importMs + f.runMs, 0) / 1000;
  lines.push(`  ${sum.toFixed(1).padStart(7)}  all ${rows.length} files; lanes took ${laneSeconds.map((s) => `${s.toFixed(0)} s`).join(', ')}`);
  console.log(lines.join('\n'));
  if (process.env['PGBK_TEST_TIMES']) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(process.env['PGBK_TEST_TIMES'], `${JSON.stringify(rows, null, 2)}\n`);
  }
}

if (jobs > 1 && suites.includes('integration') && suites.every((s) => s === 'unit' || s === 'integration')) {
  await runLanes(jobs);
} else {
  for (const suite of suites) {
    const dir = suiteDir(suite);
    if (dir === undefined) {
      problems++;
      continue;
    }
    console.log(`\n=== ${suite} ===`);
    account(suite, [await runUvu(dir)]);
  }
}
console.log(`\n${passed} passed, ${failed + problems} failed`);
process.exit(failed + problems === 0 ? 0 : 1);
