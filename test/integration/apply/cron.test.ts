// test-lane: light — output formats of apply (json, quiet, log-format); no time bound
/**
 * apply run from cron against a real PostgreSQL 15 (issue 10 items 5 and 7): `apply --json` is one
 * object in the shared envelope; `apply --quiet` prints nothing when everything succeeded (a run
 * with changes and a run without) and still reports a failure on stderr with exit 1; text
 * diagnostics carry ISO UTC timestamps; `--log-format json` turns every stderr line into JSON.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, runPgbk, type World } from '../../support/pgbk.js';

let world: World;

test.before(async () => {
  world = await makeWorld();
});

test.after(async () => {
  await world?.destroy();
});

const ISO_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) /;

test('apply --json: the shared envelope with the plan, results and errors', async () => {
  const r = await world.pgbk(['apply', '--json']);
  assert.is(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { formatVersion: string; command: string; actions: unknown[]; results: { outcome: string }[]; errors: unknown[] };
  assert.is(doc.formatVersion, '1.0');
  assert.is(doc.command, 'apply');
  assert.ok(doc.actions.length > 0, 'the first apply has work to do');
  assert.ok(
    doc.results.every((x) => x.outcome === 'done'),
    r.stdout,
  );
  assert.equal(doc.errors, []);
  // Its diagnostics (base backup started, DONE, …) are timestamped.
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, ISO_LINE);
});

test('apply --quiet: nothing on stdout or stderr on success, with or without changes', async () => {
  // New WAL gives the next run something to archive; a second run right after has nothing.
  await world.cluster.sql('SELECT pg_switch_wal()');
  for (let i = 0; i < 2; i++) {
    const r = await world.pgbk(['apply', '--quiet']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '');
    assert.is(r.stderr, '');
  }
  const plain = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(plain.code, 0, `the last quiet run left nothing to do:\n${plain.stdout}`);
  const q = await world.pgbk(['apply', '-q']);
  assert.equal([q.code, q.stdout, q.stderr], [0, '', '']);
});

test('apply --quiet still prints a warning that WAL is at risk (archiving refused), exit 0', async () => {
  await world.cluster.sql("ALTER SYSTEM SET archive_command = 'false'");
  await world.cluster.sql('SELECT pg_reload_conf()');
  try {
    const r = await world.pgbk(['apply', '--quiet']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.is(lines.length, 1, r.stderr);
    assert.match(lines[0]!, ISO_LINE);
    assert.match(lines[0]!, / WARN +main: archiving-refused: archive_command is 'false'/);
  } finally {
    await world.cluster.sql('ALTER SYSTEM RESET archive_command');
    await world.cluster.sql('SELECT pg_reload_conf()');
  }
});

test('apply --quiet still reports a failure on stderr (timestamped), exit 1', async () => {
  const config = path.join(world.root, 'unreachable.yaml');
  await writeFile(
    config,
    `catalog: ${world.catalog}\nservers:\n  main:\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2 }\n`,
  );
  // Tomorrow 04:00: the 03:00 backup is due, and the server cannot be reached.
  const now = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10) + 'T04:00:00Z';
  const r = await runPgbk(['--config', config, 'apply', '--quiet', '--now', now]);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /base-backup .*failed.*ECONNREFUSED/, r.stderr);
  assert.match(r.stderr, / WARN +main: server-unreachable: cannot reach PostgreSQL/, r.stderr);
  for (const l of r.stderr.split('\n').filter((x) => x !== '' && !x.startsWith('  hint:'))) assert.match(l, ISO_LINE, r.stderr);
});

test('--log-format json: every stderr line of apply is a JSON object with time, level and msg', async () => {
  await world.cluster.sql('SELECT pg_switch_wal()');
  const config = path.join(world.root, 'unreachable.yaml');
  const now = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10) + 'T04:00:00Z';
  for (const args of [
    ['--log-format', 'json', '--config', world.configPath, 'apply'],
    ['--config', config, 'apply', '--log-format=json', '--now', now],
  ]) {
    const r = await runPgbk(args);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    if (args.includes(config)) assert.ok(lines.length > 0, 'the unreachable server is reported');
    for (const l of lines) {
      const o = JSON.parse(l) as { time: string; level: string; msg: string };
      assert.match(o.time, /^\d{4}-\d\d-\d\dT.*Z$/);
      assert.ok(['info', 'warn', 'error'].includes(o.level), l);
      assert.type(o.msg, 'string');
    }
  }
});

test.run();
