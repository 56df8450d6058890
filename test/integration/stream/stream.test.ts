/**
 * wal.method stream with a real PostgreSQL 15 that does not archive at all (archive_mode off): the
 * daemon creates the slot, runs pg_receivewal, gets its first backup to DONE on an idle server
 * (pg_switch_wal when the backup waits for its end segment), has fresh WAL on disk in streaming/
 * within seconds (the .partial), archives completed segments within seconds, and `pgbk check`
 * reports the slot and the receiver — failing with a hint when the receiver is down or the slot is
 * missing.
 */
import { test } from 'uvu';
import { waitFor as waitUntil } from '../../support/wait.js';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runPgbk } from '../../support/pgbk.js';
import { chownToPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';
import { startDaemon, type DaemonProcess } from '../daemon/daemon-process.js';

let cluster: TestCluster;
let root: string;
let configPath: string;
let catalog: string;
let daemon: DaemonProcess | undefined;

function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, stepMs = 50): Promise<T> {
  return waitUntil(what, fn, { timeoutMs, stepMs, context: () => daemon?.log().slice(-3000) ?? '' });
}

const pgbk = (args: readonly string[]) => runPgbk(['--config', configPath, ...args]);

test.before(async () => {
  cluster = await startCluster(); // no archive_command: archive_mode stays off
  root = await tempDir('pgbk-stream-');
  catalog = path.join(root, 'catalog');
  // The catalog belongs to postgres from the start (wal-fetch, run by PostgreSQL, reads it later):
  // the daemon, started as root, then runs as postgres, and every file it writes is postgres's.
  await mkdir(catalog);
  await chownToPostgres(catalog);
  configPath = path.join(root, 'pgbk.yaml');
  await writeFile(
    configPath,
    `catalog: ${catalog}\nservers:\n  main:\n    connection: "${cluster.conninfo}"\n    backup: { schedule: "0 3 * * *" }\n    wal: { method: stream }\n    retention: { redundancy: 5 }\n`,
  );
  await cluster.sql('CREATE TABLE t (note text)');
});

test.after(async () => {
  if (daemon !== undefined && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
  await cluster?.destroy();
  const { rm } = await import('node:fs/promises');
  await rm(root, { recursive: true, force: true });
});

test('daemon streams: slot, receiver, first backup DONE on an idle server', async () => {
  daemon = startDaemon(configPath, ['--reconcile-interval', '1h', '--switch-wal-after', '3s']);
  await daemon.waitForLog(/replication slot pgbk_main created/);
  await daemon.waitForLog(/pg_receivewal started/);
  await waitFor(
    'first backup DONE',
    async () => {
      const r = await pgbk(['list', '--json']);
      const list = r.stdout === '' ? [] : (JSON.parse(r.stdout) as { backups: { status: string }[] }).backups;
      return list.some((b) => b.status === 'DONE') ? true : undefined;
    },
    90_000,
    250,
  );
});

test('RPO of seconds: a committed row is on our disk in streaming/*.partial', async () => {
  const marker = `pgbk-rpo-marker-${process.pid}-${Date.now()}`;
  const t0 = Date.now();
  await cluster.sql(`INSERT INTO t VALUES ('${marker}')`);
  const dir = path.join(catalog, 'main', 'streaming');
  await waitFor(
    'marker in a .partial',
    async () => {
      for (const f of await readdir(dir)) {
        if (f.endsWith('.partial') && (await readFile(path.join(dir, f))).includes(marker)) return true;
      }
      return undefined;
    },
    5000,
    50,
  );
  const ms = Date.now() - t0;
  assert.ok(ms < 3000, `row streamed to disk after ${ms} ms`);
  rpoMarker = marker;
});

let rpoMarker = '';

test('restore to the very latest point: wal-fetch serves the streaming .partial, the row is there', async () => {
  assert.ok(rpoMarker !== '');
  // wal-fetch runs as PostgreSQL's OS user: it must be able to read the catalog.
  await chownToPostgres(catalog);
  const target = path.join(root, 'restored-latest');
  const r = await pgbk(['restore', 'main', 'latest', '--target-dir', target]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const restored = await startClusterOn(target, { conf: { archive_mode: 'off' } });
  try {
    await waitForQuery(restored, 'SELECT pg_is_in_recovery()', 'f', 60_000);
    assert.is(await restored.sql(`SELECT count(*) FROM t WHERE note = '${rpoMarker}'`), '1', restored.logTail());
    assert.match(restored.logTail(2000), /served from pg_receivewal's current \.partial/, 'the row came from the streamed .partial');
  } finally {
    await restored.destroy();
  }
});

test('a completed segment is archived within seconds', async () => {
  const seg = await cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  const t0 = Date.now();
  const archived = path.join(catalog, 'main', 'wal', seg.slice(0, 16), `${seg}.zst`);
  await waitFor(`${seg} archived`, async () => (existsSync(archived) ? true : undefined), 10_000, 20);
  const ms = Date.now() - t0;
  assert.ok(ms < 3000, `${seg} archived ${ms} ms after the switch`);
  const verify = await pgbk(['verify', 'main', 'all', '--quick']);
  assert.is(verify.code, 0, verify.stdout + verify.stderr);
});

test('check: slot and receiver OK while streaming; archive checks are not shown', async () => {
  const r = await pgbk(['check']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /OK replication slot: pgbk_main exists/);
  assert.match(r.stdout, /OK wal receiver: streaming on slot pgbk_main/);
  assert.match(r.stdout, /OK pg_receivewal: /);
  assert.not.match(r.stdout, /archive_mode|archive_command|archiving/);
});

test('after SIGKILL the restarted daemon stops the orphaned pg_receivewal and streams again', async () => {
  const old = daemon!;
  const orphan = Number(/pg_receivewal started \(pid (\d+)\)/.exec(old.log())?.[1]);
  assert.ok(orphan > 0, old.log().slice(-2000));
  process.kill(old.pid, 'SIGKILL');
  await old.exited;
  daemon = startDaemon(configPath, ['--reconcile-interval', '1h', '--switch-wal-after', '3s']);
  await daemon.waitForLog(new RegExp(`stopping pg_receivewal pid ${orphan} left behind by a previous daemon`));
  await daemon.waitForLog(/pg_receivewal started/);
  await waitFor('the new receiver holds the slot', async () => {
    const pid = await cluster.sql("SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'pgbk_main'");
    return pid !== '' && /pg_receivewal started/.test(daemon!.log()) ? true : undefined;
  });
  let orphanAlive = true;
  try {
    process.kill(orphan, 0);
  } catch {
    orphanAlive = false;
  }
  assert.not.ok(orphanAlive, `orphan ${orphan} stopped`);
  const seg = await cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  const archived = path.join(catalog, 'main', 'wal', seg.slice(0, 16), `${seg}.zst`);
  await waitFor(`${seg} archived by the new receiver`, async () => (existsSync(archived) ? true : undefined), 15_000);
  const verify = await pgbk(['verify', 'main', 'all', '--quick']);
  assert.is(verify.code, 0, verify.stdout + verify.stderr);
});

test('check fails with a hint when the receiver is down, and when the slot is missing', async () => {
  process.kill(daemon!.pid, 'SIGTERM');
  assert.is((await daemon!.exited).code, 0, daemon!.log().slice(-2000));
  await waitFor('slot inactive', async () =>
    (await cluster.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pgbk_main'")) === 'f' ? true : undefined,
  );
  const down = await pgbk(['check']);
  assert.is(down.code, 1, down.stdout);
  assert.match(down.stdout, /FAILED wal receiver: no pg_receivewal is streaming on slot pgbk_main/);
  assert.match(down.stdout, /hint: start \(or restart\) pgbk daemon/);

  await cluster.sql("SELECT pg_drop_replication_slot('pgbk_main')");
  const missing = await pgbk(['check']);
  assert.is(missing.code, 1, missing.stdout);
  assert.match(missing.stdout, /FAILED replication slot: physical replication slot pgbk_main does not exist/);
  assert.match(missing.stdout, /hint: start pgbk daemon \(it creates the slot\), or run SELECT pg_create_physical_replication_slot\('pgbk_main', true\);/);

  daemon = startDaemon(configPath, ['--reconcile-interval', '1h']);
  await daemon.waitForLog(/replication slot pgbk_main created/);
  await waitFor('slot active again', async () =>
    (await cluster.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pgbk_main'")) === 't' ? true : undefined,
  );
  process.kill(daemon.pid, 'SIGTERM');
  assert.is((await daemon.exited).code, 0);
});

test.run();
