// test-lane: light — first contact on a non-default port; no time bound
/**
 * Issue 10 item 11: SSH-only mode without ssh.psqlConnection finds the server by itself. The test
 * cluster listens on a free port and a socket directory in its temp dir (neither psql's default
 * 5432 nor /var/run/postgresql): psql on the database host is pointed at them by postmaster.pid.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeSshWorld, type SshWorld } from './world.js';

let w: SshWorld | undefined;

test.after(async () => {
  await w?.destroy();
});

test('no psqlConnection: first contact and an ssh backup reach a cluster on a non-default port and socket directory', async () => {
  w = await makeSshWorld();
  assert.is.not(w.cluster.port, 5432);
  await w.writeConfig({ psqlConnection: null });
  assert.not.match(await readFile(w.configPath, 'utf8'), /psqlConnection/);
  const r = await w.pgbk(['backup', 'main']);
  assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.not.match(r.stderr, /\.s\.PGSQL\.5432/);
  const serverJson = JSON.parse(await readFile(path.join(w.catalog, 'main', 'server.json'), 'utf8')) as { systemIdentifier: string };
  assert.is(serverJson.systemIdentifier, await w.cluster.sql('SELECT system_identifier::text FROM pg_control_system()'));
  const show = await w.pgbk(['show', 'main', 'latest', '--json']);
  assert.is(show.code, 0, show.stderr);
  assert.is((JSON.parse(show.stdout) as { backup: { status: string } }).backup.status, 'DONE');
  assert.ok(existsSync(path.join(w.catalog, 'main', 'backups')));
});

test.run();
