// test-lane: light — plan files against a fresh catalog; no time bound
/**
 * Issue 10 item 4: the reviewed path works on the first try. On a new catalog (no server.json yet)
 * `plan -o FILE` sees no identity; `apply FILE` records it at first contact before comparing, and
 * that alone must not make the plan stale. A plan the catalog really moved past is still refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { listBackups, makeWorld, switchWal, type World } from '../../support/pgbk.js';

const worlds: World[] = [];

test.after(async () => {
  for (const w of worlds) await w.destroy();
});

test('new catalog: plan -o FILE then apply FILE takes the planned backup', async () => {
  const world = await makeWorld();
  worlds.push(world);
  const serverJson = path.join(world.catalog, 'main', 'server.json');
  assert.not.ok(existsSync(serverJson), 'the catalog is new');
  const planFile = path.join(world.root, 'plan.json');
  const p = await world.pgbk(['plan', '-o', planFile]);
  assert.is(p.code, 0, p.stderr);
  assert.match(p.stdout, /\+ base-backup/);

  const applied = await world.pgbk(['apply', planFile]);
  assert.is(applied.code, 0, applied.stdout + applied.stderr);
  assert.not.match(applied.stderr, /stale/);
  assert.ok(existsSync(serverJson), 'first contact recorded the identity');
  const backups = await listBackups(world);
  assert.is(backups.length, 1, JSON.stringify(backups));
  assert.is(backups[0]!.status, 'DONE');
});

test('new catalog: a plan the catalog moved past (a segment arrived) is still refused', async () => {
  const world = await makeWorld();
  worlds.push(world);
  const planFile = path.join(world.root, 'plan.json');
  const p = await world.pgbk(['plan', '-o', planFile]);
  assert.is(p.code, 0, p.stderr);
  await switchWal(world);

  const stale = await world.pgbk(['apply', planFile]);
  assert.is(stale.code, 1, stale.stdout + stale.stderr);
  assert.match(stale.stderr, /stale plan: the catalog of server main changed/);
  assert.is((await listBackups(world)).length, 0, 'nothing was backed up');
});

test.run();
