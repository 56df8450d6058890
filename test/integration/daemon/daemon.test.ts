/**
 * `pgbk daemon` with a real PostgreSQL 15: it takes the first backup on its own, archives a pushed
 * segment within ~2 s of its arrival in incoming/ (the periodic reconcile is set to an hour, so only
 * the watcher can explain that), keeps running on an invalid config at SIGHUP and picks up a valid
 * one, lets a manual `pgbk apply` share the lock, writes a metrics file after passes, logs JSON, and
 * exits 0 on SIGTERM.
 */
import { test } from 'uvu';
import { waitFor as waitUntil } from '../../support/wait.js';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, type World } from '../../support/pgbk.js';
import { startDaemon, type DaemonProcess } from './daemon-process.js';

let world: World;
let daemon: DaemonProcess | undefined;

function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, stepMs = 20): Promise<T> {
  return waitUntil(what, fn, { timeoutMs, stepMs, context: () => daemon?.log().slice(-3000) ?? '' });
}

function archivedPath(segment: string): string {
  return path.join(world.catalog, 'main', 'wal', segment.slice(0, 16), `${segment}.zst`);
}

/** Close the current segment; returns its name. */
async function switchSegment(): Promise<string> {
  await world.cluster.sql('INSERT INTO t SELECT g FROM generate_series(1, 100) g');
  return world.cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
}

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 5 }' });
  await world.cluster.sql('CREATE TABLE t (id int)');
});

test.after(async () => {
  if (daemon !== undefined && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
  await world?.destroy();
});

test('daemon takes the first backup and archives a pushed segment within ~2 s', async () => {
  const metrics = path.join(world.root, 'pgbk.prom');
  daemon = startDaemon(world.configPath, ['--log-format', 'json', '--reconcile-interval', '1h', '--metrics-file', metrics]);
  await daemon.waitForLog(/"msg":"daemon started"/);
  await waitFor(
    'first backup DONE',
    async () => {
      const r = await world.pgbk(['list', '--json']);
      const list = r.stdout === '' ? [] : (JSON.parse(r.stdout) as { backups: { status: string }[] }).backups;
      return list.some((b) => b.status === 'DONE') ? true : undefined;
    },
    60_000,
    200,
  );
  // Every log line is one JSON object.
  for (const line of daemon.log().trim().split('\n')) {
    const o = JSON.parse(line) as { time: string; level: string; msg: string };
    assert.ok(o.time && o.level && typeof o.msg === 'string', line);
  }
  await waitFor('metrics file', async () => (existsSync(metrics) ? true : undefined));
  assert.match(await readFile(metrics, 'utf8'), /^pgbk_backups\{server="main",status="DONE"\} 1$/m);

  // Wait for quiet (no pass in progress), then measure arrival → archived.
  await new Promise((r) => setTimeout(r, 1000));
  for (let i = 0; i < 3; i++) {
    const seg = await switchSegment();
    const arrived = await waitFor(
      `${seg} in incoming/`,
      async () => (existsSync(path.join(world.incoming, seg)) || existsSync(archivedPath(seg)) ? Date.now() : undefined),
      30_000,
      5,
    );
    const archived = await waitFor(`${seg} archived`, async () => (existsSync(archivedPath(seg)) ? Date.now() : undefined), 10_000, 5);
    const ms = archived - arrived;
    assert.ok(ms < 2000, `segment ${seg} archived ${ms} ms after arrival`);
    await waitFor(`${seg} removed from incoming/`, async () => (existsSync(path.join(world.incoming, seg)) ? undefined : true), 2000, 5);
  }
});

test('SIGHUP: an invalid config is refused and the old one kept; a valid one is loaded', async () => {
  const d = daemon!;
  const good = await readFile(world.configPath, 'utf8');
  await writeFile(world.configPath, `${good}\nbogus: [\n`);
  process.kill(d.pid, 'SIGHUP');
  await d.waitForLog(/configuration reload failed, keeping the previous configuration/);
  // Still archiving with the old configuration.
  const seg = await switchSegment();
  await waitFor(`${seg} archived after a failed reload`, async () => (existsSync(archivedPath(seg)) ? true : undefined), 20_000);

  await writeFile(world.configPath, good.replace('redundancy: 5', 'redundancy: 6'));
  process.kill(d.pid, 'SIGHUP');
  await d.waitForLog(/"msg":"configuration reloaded"/);
});

test('a manual pgbk apply runs while the daemon is up (shared lock)', async () => {
  const seg = await switchSegment();
  const r = await world.pgbk(['apply', '--lock-timeout', '60s']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  // PostgreSQL's archiver may hand the segment to incoming/ after the apply looked: the daemon's
  // watcher archives it then. Waited for here, so the SIGTERM below does not race its arrival.
  await waitFor(`${seg} archived`, async () => (existsSync(archivedPath(seg)) ? true : undefined), 20_000);
});

test('SIGTERM: the daemon exits 0, leaving no lock and no incoming backlog', async () => {
  const d = daemon!;
  process.kill(d.pid, 'SIGTERM');
  const { code } = await d.exited;
  assert.is(code, 0, d.log().slice(-2000));
  assert.match(d.log(), /"msg":"daemon stopped"/);
  assert.not.ok(existsSync(path.join(world.catalog, 'main', 'lock')), 'lock released');
  const left = (await readdir(world.incoming)).filter((n) => !n.startsWith('.'));
  assert.equal(left, []);
});

test('pgbk metrics prints and writes the Prometheus text, with check results on request', async () => {
  const r = await world.pgbk(['metrics', '--checks']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^pgbk_backups\{server="main",status="DONE"\} [1-9]\d*$/m);
  assert.match(r.stdout, /^pgbk_check_ok\{server="main",check="wal_level"\} 1$/m);
  assert.match(r.stdout, /^pgbk_wal_archived_segments\{server="main"\} [1-9]\d*$/m);
  const file = path.join(world.root, 'out.prom');
  const w = await world.pgbk(['metrics', '--output', file]);
  assert.is(w.code, 0, w.stderr);
  assert.match(await readFile(file, 'utf8'), /^# TYPE pgbk_backups gauge$/m);
  assert.equal(
    (await readdir(world.root)).filter((n) => n.startsWith('.out.prom')),
    [],
    'no temp file left',
  );
});

test.run();
