/**
 * Push and stream both on: archive_command copies every segment into incoming/ while pg_receivewal
 * streams the same segments. Each segment is archived once, the second copy is recognised as a
 * duplicate (nothing quarantined), and neither incoming/ nor streaming/ keeps completed files.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, type World } from '../../support/pgbk.js';
import { startDaemon, type DaemonProcess } from '../daemon/daemon-process.js';

let world: World;
let daemon: DaemonProcess | undefined;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { schedule: "0 3 * * *" }\nwal: { method: stream }\nretention: { redundancy: 5 }' });
  await world.cluster.sql('CREATE TABLE t (id int)');
});

test.after(async () => {
  if (daemon !== undefined && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
  await world?.destroy();
});

test('duplicates from push and stream are archived once, nothing quarantined', async () => {
  daemon = startDaemon(world.configPath, ['--reconcile-interval', '2s']);
  await daemon.waitForLog(/pg_receivewal started/);
  const closed: string[] = [];
  for (let i = 0; i < 6; i++) {
    await world.cluster.sql('INSERT INTO t SELECT g FROM generate_series(1, 1000) g');
    closed.push(await world.cluster.sql('SELECT pg_walfile_name(pg_switch_wal())'));
    await sleep(300);
  }
  const last = closed[closed.length - 1]!;
  const streaming = path.join(world.catalog, 'main', 'streaming');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const inc = (await readdir(world.incoming)).filter((n) => !n.startsWith('.'));
    const str = (await readdir(streaming)).filter((n) => !n.endsWith('.partial') && !n.startsWith('.'));
    const walDir = path.join(world.catalog, 'main', 'wal', last.slice(0, 16));
    const archived = (await readdir(walDir).catch(() => [] as string[])).includes(`${last}.zst`);
    if (archived && inc.length === 0 && str.length === 0) break;
    if (Date.now() > deadline)
      throw new Error(`not drained: incoming ${inc.join(',')} streaming ${str.join(',')} archived ${archived}\n${daemon.log().slice(-3000)}`);
    await sleep(200);
  }
  assert.match(daemon.log(), /streamed files? handed to incoming\//);
  assert.match(daemon.log(), /duplicates? dropped/, 'the second copy of a segment was recognised');
  const errors = (await readdir(path.join(world.catalog, 'main', 'errors'))).filter((n) => !n.startsWith('.'));
  assert.equal(errors, [], 'nothing quarantined');
  const verify = await world.pgbk(['verify', 'main', 'all', '--quick']);
  assert.is(verify.code, 0, verify.stdout + verify.stderr);
  process.kill(daemon.pid, 'SIGTERM');
  assert.is((await daemon.exited).code, 0);
});

test.run();
