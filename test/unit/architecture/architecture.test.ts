/**
 * Guard rails for the house plan (ARCHITECTURE.md, DESIGN.md §2), next to plan/'s purity test:
 * cli/ is the only top floor, lib/ is a leaf, there are no import circles, and the per-segment
 * clients PostgreSQL starts for every WAL file load only their hot path.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { importCircles, importEdges, sourceFiles, staticClosure, type ImportEdge } from './import-graph.js';

const edges = importEdges();
const folderOf = (f: string): string => (f.includes('/') ? f.slice(0, f.indexOf('/')) : '');

test('the graph reader sees the tree (a guard that reads nothing passes nothing)', () => {
  const files = sourceFiles();
  assert.ok(files.length > 100, `found ${files.length} files under src/`);
  assert.ok(edges.some((e) => e.from === 'cli/command-loaders.ts' && e.to === 'cli/plan.ts' && e.dynamic));
  assert.ok(edges.some((e) => e.from === 'cli.ts' && e.to === 'cli/dispatch.ts' && e.dynamic));
});

test('nothing outside cli/ imports cli/ (the bin src/cli.ts only hands argv to it)', () => {
  const upward = edges
    .filter((e) => e.from !== 'cli.ts' && folderOf(e.from) !== 'cli' && folderOf(e.to) === 'cli' && e.to.endsWith('.ts'))
    .map((e) => `${e.from} -> ${e.to}`);
  assert.equal(upward, []);
});

test('every command entry point is in cli/: the hidden worker/agent/serve commands too', () => {
  const loaders = edges.filter((e) => e.from === 'cli/command-loaders.ts' && e.dynamic).map((e) => e.to);
  assert.ok(loaders.length >= 20, `found ${loaders.length} command loaders`);
  assert.equal(
    loaders.filter((to) => folderOf(to) !== 'cli'),
    [],
  );
});

test('lib/ imports no other folder (node built-ins, lib/ itself and errors.ts only)', () => {
  const out = edges.filter((e) => folderOf(e.from) === 'lib' && e.to.endsWith('.ts') && folderOf(e.to) !== 'lib' && e.to !== 'errors.ts');
  const packages = edges.filter((e) => folderOf(e.from) === 'lib' && !e.to.endsWith('.ts') && !e.to.startsWith('node:'));
  assert.equal(
    [...out, ...packages].map((e) => `${e.from} -> ${e.to}`),
    [],
  );
});

test('no import circles (static, type-only or dynamic)', () => {
  assert.equal(
    importCircles(edges).map((c) => c.join(' <-> ')),
    [],
  );
});

test('the circle finder finds a circle', () => {
  const e = (from: string, to: string): ImportEdge => ({ from, to, dynamic: false, typeOnly: false });
  assert.equal(importCircles([e('a.ts', 'b.ts'), e('b.ts', 'c.ts'), e('c.ts', 'a.ts'), e('c.ts', 'd.ts')]), [['a.ts', 'b.ts', 'c.ts']]);
});

/**
 * Import weight of the per-segment clients. PostgreSQL runs archive_command / restore_command once
 * per 16 MiB of WAL and waits for it; what their entry loads at start-up is paid every time. None of
 * them may load the planner, the config schema validator, ssh2, the pg driver or the executors.
 */
const HEAVY = [
  /^@aws-sdk\//,
  /^catalog\/s3\//,
  /^ssh2$/,
  /^pg$/,
  /^chokidar$/,
  /^plan\//,
  /^apply\//,
  /^observe\//,
  /^daemon\//,
  /^check\//,
  /^backup\//,
  /^restore\//,
  /^transport\/ssh\.ts$/,
];
/** The config loader (schema validation, discovery, schedule checks): only for commands that read the YAML. */
const CONFIG = [/^ajv/, /^cosmiconfig$/, /^croner$/, /^node-cron$/, /^yaml$/, /^config\/load\.ts$/];

const ENTRIES: readonly (readonly [string, boolean])[] = [
  // [entry, reads the configuration file]
  ['cli.ts', false],
  ['cli/dispatch.ts', false],
  ['cli/wal-push.ts', true], // archive_command for the local catalog: it needs the catalog path
  ['cli/wal-fetch.ts', false],
  ['cli/wal-push-client.ts', false], // wal-push --to ssh://… and --worker (the local fast path's fallback)
  ['cli/wal-fetch-remote.ts', false], // wal-fetch --from ssh://…
];

for (const [entry, readsConfig] of ENTRIES) {
  test(`${entry} loads only the per-segment hot path`, () => {
    const closure = [...staticClosure(entry, edges)];
    const heavy = closure.filter((f) => HEAVY.some((re) => re.test(f)) || (!readsConfig && CONFIG.some((re) => re.test(f))));
    assert.equal(heavy, [], `${entry} loads ${heavy.join(', ')} at start-up`);
  });
}

/**
 * The read commands (issue 13 item 5: a read command's start is Node's plus ≤ 20 ms) load the
 * restore drill code only for a server or catalog that has drills (status-drills.ts, dynamic imports).
 */
for (const entry of ['cli/status.ts', 'cli/list.ts']) {
  test(`${entry} loads no drill code at start-up`, () => {
    const drill = [...staticClosure(entry, edges)].filter((f) => /^(catalog\/drills|plan\/drill|plan\/objectives)\.ts$/.test(f));
    assert.equal(drill, [], `${entry} loads ${drill.join(', ')} at start-up`);
  });
}

/**
 * A local restore (the common case, and what every restore drill runs) loads no SSH code: ssh2
 * alone is ~0.1 s of start-up. Only the --remote branch (cli/restore-remote.ts) may reach it.
 */
test('a local restore loads no ssh2', () => {
  const local = edges.filter((e) => e.from === 'cli/restore.ts' && e.dynamic && e.to !== 'cli/restore-remote.ts').map((e) => e.to);
  assert.ok(local.length > 0, 'cli/restore.ts loads its restore code by dynamic import');
  const closure = new Set(['cli/restore.ts', ...local].flatMap((f) => [...staticClosure(f, edges)]));
  const ssh = [...closure].filter((f) => f === 'ssh2' || f === 'transport/ssh.ts');
  assert.equal(ssh, [], `a local restore loads ${ssh.join(', ')} (through ${local.join(', ')})`);
});

/**
 * The AWS SDK costs about a second of start-up: only the s3 driver's client module loads it, and
 * only on first use (createRequire; type imports elsewhere in catalog/s3/ cost nothing at run time).
 */
test('only catalog/s3/client.ts loads @aws-sdk, and only on first use', () => {
  const sdk = edges.filter((e) => e.to.startsWith('@aws-sdk/') && !e.typeOnly);
  assert.equal(
    sdk.map((e) => `${e.from} -> ${e.to}${e.dynamic ? ' (dynamic)' : ''}`),
    ['catalog/s3/client.ts -> @aws-sdk/client-s3 (dynamic)'],
  );
});

test('the weight check would catch a heavy import', () => {
  const e = (from: string, to: string, dynamic = false): ImportEdge => ({ from, to, dynamic, typeOnly: false });
  const closure = staticClosure('x.ts', [e('x.ts', 'y.ts'), e('y.ts', 'ssh2'), e('x.ts', 'plan/plan.ts', true)]);
  assert.ok(closure.has('ssh2'));
  assert.not.ok(closure.has('plan/plan.ts'), 'a dynamic import is loaded on demand, not at start-up');
});

test.run();
