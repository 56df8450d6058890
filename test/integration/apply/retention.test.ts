// test-lane: light — retention plans under apply --now; no time bound, ages come from --now
/**
 * Retention against a real PostgreSQL 15 and the real CLI: five one-off backups with WAL between
 * them, then `plan`/`apply --now <future>` under changing retention settings. Each step checks the
 * plan's words, what is on disk afterwards (backup directories, archived segments), and that the
 * plan right after the apply is "No changes.".
 *
 * Steps (backups B1…B5, oldest first):
 *  1. recoveryWindow 1d + minRedundancy 5, far future: B1…B4 are obsolete but held (warning); nothing deleted.
 *  2. `keep B1`, redundancy 3: B2 goes; pinned B1 survives, and with it every WAL segment from B1 on.
 *  3. `keep --release B1`: B1 goes; WAL before B3's beginWal is pruned, nothing from there on is lost.
 *  4. recoveryWindow 1d with the window starting between B4's and B5's end: B5 is inside, B4 is the
 *     newest before the window and stays (the base for the window's first instant); B3 goes.
 *  5. pitrWindow 1d with both B4 and B5 before it (issue 14): B5 is the window's base; B4 keeps only
 *     the WAL it needs to be consistent, the WAL between B4's end and B5's begin is pruned, and B4
 *     still restores (target immediate) to a cluster PostgreSQL starts.
 *  6. Window after every backup, minRedundancy 2: B4 obsolete but held; minRedundancy 1: B4 goes, B5
 *     stays as the one backup before the window.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { archivedSegments, listBackups, makeWorld, switchWal, type ListEntry, type World } from '../../support/pgbk.js';
import { startClusterOn, tempDir, waitForQuery } from '../../support/postgres.js';

let world: World;
/** B1…B5 as `list --json` reported them right after they were taken. */
const B: ListEntry[] = [];
const DAY = 86_400_000;
/** Far enough ahead that every backup is outside a 1-day window. */
const FAR = new Date(Date.now() + 30 * DAY).toISOString();

function backupDirOf(id: string): string {
  return path.join(world.catalog, 'main', 'backups', id);
}

function b(i: number): ListEntry {
  const e = B[i - 1];
  if (e === undefined) throw new Error(`no backup B${i}`);
  return e;
}

function walOf(e: ListEntry): string {
  if (e.beginWal === null) throw new Error(`backup ${e.id} has no beginWal`);
  return e.beginWal;
}

async function setRetention(retention: string): Promise<void> {
  // No schedule: with --now in the future a schedule would make a backup due; these steps are
  // about retention only.
  await world.writeConfig(`backup: { method: basebackup }\nretention: ${retention}`);
}

async function plan(now: string): Promise<string> {
  const r = await world.pgbk(['plan', '--now', now]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  return r.stdout;
}

async function applyAt(now: string): Promise<string> {
  const r = await world.pgbk(['apply', '--now', now]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  return r.stdout;
}

/** After an apply, planning again at the same time has nothing left to do. */
async function assertConverged(now: string): Promise<void> {
  const r = await world.pgbk(['plan', '--detailed-exitcode', '--now', now]);
  assert.is(r.code, 0, `expected an empty plan:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /No changes\./);
}

async function ids(): Promise<string[]> {
  return (await listBackups(world)).map((e) => e.id);
}

/**
 * Pruning removed exactly the segments before `boundary`: none older remains, every segment from
 * the boundary on that was archived before is still there, and something was actually pruned.
 */
function assertPrunedBefore(before: readonly string[], after: readonly string[], boundary: string): void {
  const older = before.filter((s) => s < boundary);
  assert.ok(older.length > 0, `test setup: expected segments before ${boundary} to prune, had ${before.join(',')}`);
  assert.equal(
    after.filter((s) => s < boundary),
    [],
    `segments before ${boundary} remain`,
  );
  const lost = before.filter((s) => s >= boundary && !after.includes(s));
  assert.equal(lost, [], `segments from ${boundary} on were lost`);
  assert.ok(after.includes(boundary), `the boundary segment ${boundary} itself is kept`);
}

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { method: basebackup }\nretention: { redundancy: 10 }' });
});

test.after(async () => {
  await world?.destroy();
});

test('setup: five DONE backups with distinct WAL starts, all WAL archived, converged', async () => {
  // Taken here, not in before(): uvu reports a failing test with its message, a failing hook barely.
  for (let i = 1; i <= 5; i++) {
    await switchWal(world);
    const r = await world.pgbk(['backup', 'main']);
    assert.is(r.code, 0, `backup ${i}: ${r.stdout}${r.stderr}`);
    await switchWal(world);
  }
  const a = await world.pgbk(['apply']);
  assert.is(a.code, 0, `apply: ${a.stdout}${a.stderr}`);
  B.push(...(await listBackups(world)));
  assert.is(B.length, 5);
  for (const e of B) assert.is(e.status, 'DONE', `${e.id}`);
  const begins = B.map(walOf);
  assert.equal([...begins].sort(), begins, 'begin WAL in id order');
  assert.is(new Set(begins).size, 5, 'every backup begins in its own segment');
  const segs = await archivedSegments(world.catalog);
  for (const e of B) assert.ok(segs.includes(walOf(e)) && segs.includes(e.endWal ?? ''), `WAL of ${e.id} archived`);
  await assertConverged(new Date().toISOString());
});

test('minRedundancy holds obsolete backups back with a warning and deletes nothing', async () => {
  await setRetention('{ recoveryWindow: 1d, minRedundancy: 5 }');
  const out = await plan(FAR);
  assert.not.match(out, /delete-backup/);
  assert.match(out, /! min-redundancy: retention held back: 4 obsolete backups/);
  for (let i = 1; i <= 4; i++) assert.ok(out.includes(b(i).id), `warning names B${i}`);
  const segsBefore = await archivedSegments(world.catalog);
  await applyAt(FAR);
  assert.equal(
    await ids(),
    B.map((e) => e.id),
  );
  for (const e of B) assert.ok(existsSync(backupDirOf(e.id)), `${e.id} still on disk`);
  const segsAfter = await archivedSegments(world.catalog);
  assert.equal(
    segsBefore.filter((s) => !segsAfter.includes(s)),
    [],
    'no WAL pruned while every backup is kept',
  );
  await assertConverged(FAR);
});

test('a kept backup survives retention, and so does the WAL after it', async () => {
  const k = await world.pgbk(['keep', 'main', b(1).id]);
  assert.is(k.code, 0, k.stderr);
  assert.match(k.stdout, /kept \(full\)/);
  await setRetention('{ redundancy: 3 }');
  const out = await plan(FAR);
  assert.match(out, new RegExp(`- delete-backup ${b(2).id}\\s+beyond redundancy 3`));
  assert.not.match(out, new RegExp(`delete-backup ${b(1).id}`));
  const segsBefore = await archivedSegments(world.catalog);
  await applyAt(FAR);
  assert.equal(await ids(), [b(1).id, b(3).id, b(4).id, b(5).id]);
  assert.not.ok(existsSync(backupDirOf(b(2).id)), 'B2 removed from disk');
  assert.ok(existsSync(backupDirOf(b(1).id)), 'pinned B1 still on disk');
  const segsAfter = await archivedSegments(world.catalog);
  const lost = segsBefore.filter((s) => s >= walOf(b(1)) && !segsAfter.includes(s));
  assert.equal(lost, [], 'WAL from the pinned backup on is kept');
  const list = await listBackups(world);
  assert.is(list[0]!.keep, 'full');
  await assertConverged(FAR);
});

test('releasing the pin makes the backup obsolete; WAL before the oldest remaining backup is pruned', async () => {
  const k = await world.pgbk(['keep', 'main', b(1).id, '--release']);
  assert.is(k.code, 0, k.stderr);
  assert.match(k.stdout, /released/);
  const out = await plan(FAR);
  assert.match(out, new RegExp(`- delete-backup ${b(1).id}\\s+beyond redundancy 3; 3 newer backups remain`));
  assert.match(out, /- prune-wal/);
  assert.ok(out.includes(walOf(b(3))), `prune names the boundary ${walOf(b(3))}:\n${out}`);
  const segsBefore = await archivedSegments(world.catalog);
  await applyAt(FAR);
  assert.equal(await ids(), [b(3).id, b(4).id, b(5).id]);
  assert.not.ok(existsSync(backupDirOf(b(1).id)), 'B1 removed from disk');
  assertPrunedBefore(segsBefore, await archivedSegments(world.catalog), walOf(b(3)));
  await assertConverged(FAR);
});

test('recoveryWindow keeps the newest backup that ended before the window', async () => {
  const end4 = Date.parse(b(4).endTime ?? '');
  const end5 = Date.parse(b(5).endTime ?? '');
  assert.ok(end5 > end4, 'B5 ended after B4');
  // The window [now − 1d, now] starts between B4's end and B5's end.
  const now = new Date((end4 + end5) / 2 + DAY).toISOString();
  await setRetention('{ recoveryWindow: 1d }');
  const out = await plan(now);
  assert.match(out, new RegExp(`- delete-backup ${b(3).id}\\s+outside recoveryWindow 1d; 2 newer backups remain`));
  assert.not.match(out, new RegExp(`delete-backup ${b(4).id}`), 'B4 is the base for the window start');
  const segsBefore = await archivedSegments(world.catalog);
  const applied = await applyAt(now);
  assert.equal(await ids(), [b(4).id, b(5).id], applied);
  assert.not.ok(existsSync(backupDirOf(b(3).id)));
  assertPrunedBefore(segsBefore, await archivedSegments(world.catalog), walOf(b(4)));
  await assertConverged(now);
});

test('pitrWindow: an older backup keeps only the WAL it needs to be consistent, and still restores', async () => {
  // Both B4 and B5 ended more than a day before FAR: B5 is the PITR window's base, B4 is older.
  await setRetention('{ recoveryWindow: 1d, minRedundancy: 2, pitrWindow: 1d }');
  const out = await plan(FAR);
  assert.not.match(out, /delete-backup/);
  assert.match(out, /- prune-wal .*\n?.*outside the PITR window \(1d\)/);
  assert.match(out, new RegExp(`it starts at ${b(5).id}.*1 older backup keep only the WAL they need to be consistent`));
  const segsBefore = await archivedSegments(world.catalog);
  const b4End = b(4).endWal ?? '';
  const between = segsBefore.filter((s) => s > b4End && s < walOf(b(5)));
  assert.ok(between.length > 0, `test setup: WAL between B4's end ${b4End} and B5's begin ${walOf(b(5))}: ${segsBefore.join(',')}`);
  await applyAt(FAR);
  const segsAfter = await archivedSegments(world.catalog);
  assert.equal(
    segsBefore.filter((s) => !segsAfter.includes(s)),
    between,
    'exactly the WAL between B4 and B5 is pruned',
  );
  assert.ok(
    segsBefore.filter((s) => s >= walOf(b(4)) && s <= b4End).every((s) => segsAfter.includes(s)),
    "B4's own WAL stays",
  );
  await assertConverged(FAR);

  // A point between B4 and B5 is no longer reachable: refused before anything is written, naming
  // the nearest points that are.
  const dir = path.join(await tempDir('pgbk-pitr-window-'), 'data');
  // Between B4's end and B5's end: restore then starts from B4 and needs the pruned WAL. (B4's end
  // + 1 s was after B5's end on a fast machine — the backups are taken back to back — and B5 then
  // restored it.)
  const end4 = Date.parse(b(4).endTime ?? '');
  const end5 = Date.parse(b(5).endTime ?? '');
  assert.ok(end5 - end4 >= 2, `test setup: B5 ended after B4 (${b(4).endTime}, ${b(5).endTime})`);
  const inGap = new Date(Math.floor((end4 + end5) / 2)).toISOString();
  const refused = await world.pgbk(['restore', 'main', '--target-dir', dir, '--target-time', inGap]);
  assert.is(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /lies in a gap of the WAL archive/);
  assert.match(refused.stderr, new RegExp(`nearest reachable points: .*${b(4).id}.*from the end of backup ${b(5).id}`));
  assert.not.ok(existsSync(dir), 'nothing written for a refused restore');

  // PostgreSQL proves B4 is still consistent on its own WAL.
  const r = await world.pgbk(['restore', 'main', b(4).id, '--target-dir', dir, '--target-immediate', '--target-action', 'promote', '--no-archive']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  // This world's catalog belongs to the test process; the copy's restore_command (pgbk wal-fetch)
  // runs as postgres, which must be able to read it (in production: the same user or its group).
  execFileSync('chmod', ['-R', 'o+rX', world.catalog]);
  const cluster = await startClusterOn(dir, { conf: { archive_mode: 'off' } });
  try {
    await waitForQuery(cluster, 'SELECT pg_is_in_recovery()', 'f', 90_000);
  } finally {
    await cluster.destroy();
  }
});

test('with every backup before the window: minRedundancy holds, then only the newest stays', async () => {
  await setRetention('{ recoveryWindow: 1d, minRedundancy: 2 }');
  const held = await plan(FAR);
  assert.not.match(held, /delete-backup/);
  assert.match(held, new RegExp(`! min-redundancy: .*${b(4).id}.*minRedundancy is 2`));
  await applyAt(FAR);
  assert.equal(await ids(), [b(4).id, b(5).id]);
  await assertConverged(FAR);

  await setRetention('{ recoveryWindow: 1d, minRedundancy: 1 }');
  const out = await plan(FAR);
  assert.match(out, new RegExp(`- delete-backup ${b(4).id}\\s+outside recoveryWindow 1d; 1 newer backup remains`));
  assert.not.match(out, new RegExp(`delete-backup ${b(5).id}`));
  const segsBefore = await archivedSegments(world.catalog);
  await applyAt(FAR);
  assert.equal(await ids(), [b(5).id]);
  assert.not.ok(existsSync(backupDirOf(b(4).id)));
  assert.ok(existsSync(backupDirOf(b(5).id)));
  assertPrunedBefore(segsBefore, await archivedSegments(world.catalog), walOf(b(5)));
  await assertConverged(FAR);
});

test.run();
