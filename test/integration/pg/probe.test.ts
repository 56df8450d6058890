// test-lane: light — probe answers and errors; connect_timeout 5 s only on a refused/wrong password path
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import { pgbkErrorOf } from '../../support/wait.js';
import * as assert from 'uvu/assert';
import { parseLsn } from '../../../src/pg/lsn.js';
import { probeServer, switchWal } from '../../../src/pg/probe.js';
import { freePort } from '../../support/free-port.js';
import { PG_BINDIR, startCluster, type TestCluster } from '../../support/postgres.js';

let cluster: TestCluster | undefined;

function pg(): TestCluster {
  if (cluster === undefined) throw new Error('cluster not started');
  return cluster;
}

test.before(async () => {
  cluster = await startCluster();
});

test.after(async () => {
  await cluster?.destroy();
});

test('probeServer: identity matches pg_controldata; 16 MiB segments; PG 15', async () => {
  const facts = await probeServer(pg().conninfo);
  const controldata = execFileSync(path.join(PG_BINDIR, 'pg_controldata'), ['-D', pg().pgdata], { encoding: 'utf8' });
  const sysid = /Database system identifier:\s+(\d+)/.exec(controldata)?.[1];
  assert.ok(sysid !== undefined, controldata);
  assert.is(facts.systemIdentifier, sysid);
  assert.is(facts.walSegmentSize, 16 * 1024 * 1024);
  assert.ok(facts.pgVersion >= 150000 && facts.pgVersion < 160000, String(facts.pgVersion));
  assert.is(facts.timeline, 1);
  assert.is(facts.inRecovery, false);
  assert.is(facts.walLevel, 'replica');
  assert.is(facts.archiveMode, 'off');
  assert.ok(facts.currentLsn !== null && parseLsn(facts.currentLsn) > 0n);
});

test('probeServer: over TCP too, and as a non-superuser with only REPLICATION', async () => {
  // Hardened servers revoke the pg_control_* functions; the probe then asks IDENTIFY_SYSTEM.
  await pg().sql(
    'CREATE ROLE pgbk_probe LOGIN REPLICATION; ' +
      'REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC; ' +
      'REVOKE EXECUTE ON FUNCTION pg_control_checkpoint() FROM PUBLIC',
  );
  assert.is(await pg().sql("SELECT has_function_privilege('pgbk_probe', 'pg_control_system()', 'EXECUTE')"), 'f');
  const tcp = await probeServer(`host=127.0.0.1 port=${pg().port} user=pgbk_probe dbname=postgres`);
  const local = await probeServer(pg().conninfo);
  assert.is(tcp.systemIdentifier, local.systemIdentifier);
  assert.is(tcp.timeline, local.timeline);
});

test('switchWal: moves to the next segment', async () => {
  await pg().sql('CREATE TABLE t AS SELECT 1 AS x');
  const before = await probeServer(pg().conninfo);
  await switchWal(pg().conninfo);
  const after = await probeServer(pg().conninfo);
  assert.ok(before.currentLsn !== null && after.currentLsn !== null);
  const seg = BigInt(after.walSegmentSize);
  assert.ok(parseLsn(after.currentLsn) / seg > parseLsn(before.currentLsn) / seg, `${before.currentLsn} → ${after.currentLsn}`);
});

test('probeServer: a port nobody listens on is a NETWORK error, password redacted', async () => {
  const port = await freePort();
  const err = await pgbkErrorOf(probeServer(`host=127.0.0.1 port=${port} user=postgres password=hunter2 connect_timeout=5`));
  assert.is(err.code, 'NETWORK');
  assert.match(err.message, new RegExp(`port=${port}`));
  assert.not.match(err.message, /hunter2/);
});

test('probeServer: a missing unix socket is a NETWORK error too', async () => {
  const err = await pgbkErrorOf(probeServer(`host=${pg().socketDir} port=1 user=postgres`));
  assert.is(err.code, 'NETWORK');
});

test('probeServer: a server-side refusal is a PG error with the server message', async () => {
  const err = await pgbkErrorOf(probeServer(`${pg().conninfo} dbname=no_such_db`));
  assert.is(err.code, 'PG');
  assert.match(err.message, /database "no_such_db" does not exist/);
});

test.run();
