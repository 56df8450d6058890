// test-lane: light — bad config and bad WAL files are refused or quarantined; no wait shorter than 60 s, ages are set by mtime
/**
 * Bad input against a real PostgreSQL 15 and the real CLI. Nothing bad may reach the archive and
 * nothing good may be lost:
 *  - a broken configuration (invalid YAML, unknown key, bad cron, redundancy 0): plan, apply and
 *    validate exit 1 naming file:line:column and the path; the catalog is byte-for-byte unchanged.
 *  - files in incoming/ (WAL of a second cluster, a truncated segment, a non-WAL file, a segment
 *    with an archived name but other content): each is quarantined in errors/ with a .reason file,
 *    its bytes intact; the archived copy is unchanged; the real segment of that name still arrives.
 *  - the same files through `pgbk wal-push` (as the postgres OS user, like archive_command): non-zero
 *    exit for each, 0 for a good segment and for an identical duplicate.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { chownToPostgres, startCluster, type TestCluster } from '../../support/postgres.js';
import {
  archivedSegmentFile,
  archivedSegments,
  listBackups,
  makeWorld,
  sha256OfFile,
  snapshotTree,
  switchWal,
  waitArchiverIdle,
  type World,
} from '../../support/pgbk.js';

/** Archives by cp into incoming/; pgbk runs as the test user. */
let world: World;
/** Archives through `pgbk wal-push`; its catalog and every pgbk run belong to postgres. */
let pushWorld: World;
/** A second, unrelated cluster: the source of foreign WAL. */
let other: TestCluster;

const GOOD_CONFIG = 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 2 }';

test.before(async () => {
  [world, pushWorld, other] = await Promise.all([
    makeWorld({ serverYaml: GOOD_CONFIG }),
    makeWorld({ serverYaml: GOOD_CONFIG, archive: 'wal-push' }),
    startCluster(),
  ]);
});

test.after(async () => {
  await Promise.all([world?.destroy(), pushWorld?.destroy(), other?.destroy()]);
});

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * The segment a cluster is writing now (not yet archived). pg_walfile_name() of an LSN exactly on a
 * segment boundary (right after pg_switch_wal) names the previous, closed segment: hence the + 1.
 */
async function currentSegment(c: TestCluster): Promise<string> {
  return c.sql('SELECT pg_walfile_name(pg_current_wal_lsn() + 1)');
}

/**
 * A full-size WAL segment of the other cluster carrying `name`, so it passes every check but the
 * system identifier: the other cluster is switched forward until it writes that segment itself.
 */
async function foreignSegment(name: string): Promise<Buffer> {
  const cur = await advanceTo(other, name);
  if (cur !== name) throw new Error(`the other cluster is already past ${name} (at ${cur})`);
  // Some WAL in it, so its first page (with the long header) is written, not a recycled file's.
  await other.sql('INSERT INTO filler VALUES (2)');
  await other.sql('CHECKPOINT');
  return readFile(path.join(other.pgdata, 'pg_wal', name));
}

/** Switch WAL on `c` until it writes segment `name` or a later one; returns the segment it writes. */
async function advanceTo(c: TestCluster, name: string): Promise<string> {
  await c.sql('CREATE TABLE IF NOT EXISTS filler (x int)');
  for (let i = 0; i < 200; i++) {
    const cur = await currentSegment(c);
    if (cur >= name) return cur;
    await c.sql('INSERT INTO filler VALUES (1)');
    await c.sql('SELECT pg_switch_wal()');
  }
  throw new Error(`could not bring the cluster to ${name}`);
}

/** An archived segment's bytes with one byte changed past the first page: valid header, other content. */
async function alteredCopy(w: World, segment: string): Promise<Buffer> {
  const buf = Buffer.from(await readArchivedWal(w.catalog, 'main', segment));
  const at = 1024 * 1024 + 17;
  buf[at] = (buf[at]! ^ 0xff) & 0xff;
  return buf;
}

/** errors/ entries: quarantined file name → its .reason text. */
async function quarantined(w: World): Promise<Map<string, string>> {
  const dir = path.join(w.catalog, 'main', 'errors');
  const names = await readdir(dir);
  const out = new Map<string, string>();
  for (const n of names) {
    if (n.endsWith('.reason') || n.startsWith('.')) continue;
    assert.ok(names.includes(`${n}.reason`), `${n} has a .reason sidecar`);
    out.set(n, await readFile(path.join(dir, `${n}.reason`), 'utf8'));
  }
  return out;
}

/** The one quarantined copy of `name` added since `before`, with its reason. */
async function newQuarantine(w: World, before: Map<string, string>, name: string): Promise<{ file: string; reason: string }> {
  const now = await quarantined(w);
  const added = [...now.keys()].filter((k) => !before.has(k));
  assert.is(added.length, 1, `one new file in errors/: ${added.join(', ')}`);
  const file = added[0]!;
  assert.ok(file.startsWith(`${name}.`), `${file} is a copy of ${name}`);
  return { file: path.join(w.catalog, 'main', 'errors', file), reason: now.get(file)! };
}

async function applyOnce(w: World): Promise<string> {
  const r = await w.pgbk(['apply']);
  return `exit ${String(r.code)}\n${r.stdout}${r.stderr}`;
}

// ---------------------------------------------------------------------------------------------

test('setup: a first apply takes a backup and archives WAL', async () => {
  const r = await world.pgbk(['apply']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  await switchWal(world);
  const again = await world.pgbk(['apply']);
  assert.is(again.code, 0, again.stdout + again.stderr);
  const [b] = await listBackups(world);
  assert.is(b?.status, 'DONE');
  assert.ok((await archivedSegments(world.catalog)).length >= 2);
});

const BAD_CONFIGS: readonly { name: string; body: (catalog: string, conninfo: string) => string; expect: RegExp }[] = [
  {
    name: 'invalid YAML',
    body: (catalog, conninfo) => `catalog: ${catalog}\nservers:\n  main:\n    connection: "${conninfo}"\n    retention: { redundancy: 2\n    backup: [\n`,
    expect: /pgbk\.yaml:\d+:\d+: invalid YAML/,
  },
  {
    name: 'unknown key',
    body: (catalog, conninfo) =>
      `catalog: ${catalog}\nservers:\n  main:\n    connection: "${conninfo}"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2, redundnacy: 3 }\n`,
    expect: /pgbk\.yaml:6:\d+: servers\.main\.retention\.redundnacy: unknown key/,
  },
  {
    name: 'bad cron',
    body: (catalog, conninfo) =>
      `catalog: ${catalog}\nservers:\n  main:\n    connection: "${conninfo}"\n    backup: { schedule: "61 3 * * *" }\n    retention: { redundancy: 2 }\n`,
    expect: /pgbk\.yaml:5:\d+: servers\.main\.backup\.schedule: invalid cron expression "61 3 \* \* \*"/,
  },
  {
    name: 'redundancy 0',
    body: (catalog, conninfo) =>
      `catalog: ${catalog}\nservers:\n  main:\n    connection: "${conninfo}"\n    backup: { schedule: "0 3 * * *" }\n    retention:\n      redundancy: 0\n`,
    expect: /pgbk\.yaml:7:\d+: servers\.main\.retention\.redundancy: must be >= 1/,
  },
];

for (const c of BAD_CONFIGS) {
  test(`config with ${c.name}: validate, plan and apply exit 1 naming file:line and path; catalog unchanged`, async () => {
    await writeFile(world.configPath, c.body(world.catalog, world.cluster.conninfo));
    const before = await snapshotTree(world.catalog);
    const cmds = [['validate'], ['plan'], ['apply'], ['apply', '--now', '2099-01-01T00:00:00Z']];
    // Independent and (if pgbk is right) read-only: run them side by side.
    const results = await Promise.all(cmds.map((cmd) => world.pgbk(cmd)));
    for (const [i, cmd] of cmds.entries()) {
      const r = results[i]!;
      assert.is(r.code, 1, `${cmd.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${world.configPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+`), `${cmd.join(' ')} names the file`);
      assert.match(r.stderr, c.expect, `${cmd.join(' ')}: ${r.stderr}`);
      assert.is(r.stdout, '', `${cmd.join(' ')} prints no plan`);
    }
    assert.equal(await snapshotTree(world.catalog), before, 'catalog unchanged');
  });
}

test('restore the good config: the catalog is where it was', async () => {
  await world.writeConfig(GOOD_CONFIG);
  const r = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(r.code, 0, r.stdout + r.stderr);
});

test('WAL of another cluster in incoming/ is quarantined, and the real segment of that name still arrives', async () => {
  const name = await currentSegment(world.cluster);
  const bytes = await foreignSegment(name);
  await writeFile(path.join(world.incoming, name), bytes);
  const before = await quarantined(world);
  const out = await applyOnce(world);
  assert.match(out, /quarantined incoming\/\w+: WAL belongs to cluster/, out);
  const q = await newQuarantine(world, before, name);
  assert.match(q.reason, /WAL belongs to cluster \d+, this catalog holds cluster \d+/);
  assert.is(await sha256OfFile(q.file), sha256(bytes), 'quarantined bytes intact');
  assert.not.ok((await archivedSegments(world.catalog)).includes(name), 'not archived');
  // The cluster's own segment with that name is archived normally afterwards: nothing lost.
  await switchWal(world);
  const r = await world.pgbk(['apply']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.ok((await archivedSegments(world.catalog)).includes(name), `${name} of this cluster archived`);
  assert.is.not(sha256(await readArchivedWal(world.catalog, 'main', name)), sha256(bytes), 'the archived copy is ours, not the foreign one');
});

test('a truncated segment (not modified for minutes) is quarantined; a fresh short one is left alone', async () => {
  // Write a little and flush it (synchronous_commit is off in tests): right after a switch the
  // next segment's file may not exist yet.
  await world.cluster.sql('CREATE TABLE IF NOT EXISTS filler (x int)');
  await world.cluster.sql('INSERT INTO filler VALUES (1)');
  await world.cluster.sql('CHECKPOINT');
  const name = await currentSegment(world.cluster);
  const full = await readFile(path.join(world.cluster.pgdata, 'pg_wal', name));
  const bytes = full.subarray(0, 64 * 1024);
  const file = path.join(world.incoming, name);
  await writeFile(file, bytes);
  // Modified just now: a plain cp may still be writing it.
  const fresh = await world.pgbk(['plan']);
  assert.is(fresh.code, 0, fresh.stderr);
  assert.not.match(fresh.stdout, /~ quarantine/, fresh.stdout);
  const old = new Date(Date.now() - 5 * 60_000);
  await utimes(file, old, old);
  const before = await quarantined(world);
  const out = await applyOnce(world);
  assert.match(out, new RegExp(`quarantine\\s+${name}\\s+size 65536 bytes, expected 16777216`), out);
  const q = await newQuarantine(world, before, name);
  assert.match(q.reason, /size 65536 bytes, expected 16777216/);
  assert.is(await sha256OfFile(q.file), sha256(bytes), 'quarantined bytes intact');
  assert.not.ok((await archivedSegments(world.catalog)).includes(name));
  await switchWal(world);
  const r = await world.pgbk(['apply']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const archived = await readArchivedWal(world.catalog, 'main', name);
  assert.is(archived.length, 16 * 1024 * 1024, 'the full segment arrived and was archived');
});

test('a non-WAL file in incoming/ is quarantined with its bytes', async () => {
  const name = `junk-${randomBytes(6).toString('hex')}`;
  const bytes = randomBytes(10_000);
  await writeFile(path.join(world.incoming, name), bytes);
  const before = await quarantined(world);
  const out = await applyOnce(world);
  assert.match(out, new RegExp(`quarantine\\s+${name}\\s+not a WAL file name`), out);
  const q = await newQuarantine(world, before, name);
  assert.match(q.reason, /not a WAL file name/);
  assert.is(await sha256OfFile(q.file), sha256(bytes));
});

test('an archived name with different content is quarantined; the archived copy is untouched', async () => {
  const segs = await archivedSegments(world.catalog);
  const name = segs[segs.length - 1]!;
  const stored = (await archivedSegmentFile(world.catalog, name))!;
  const storedSha = await sha256OfFile(stored);
  const bytes = await alteredCopy(world, name);
  await writeFile(path.join(world.incoming, name), bytes);
  const before = await quarantined(world);
  const out = await applyOnce(world);
  assert.match(out, /quarantined incoming\/\S+: an archived file with this name and different content exists/, out);
  const q = await newQuarantine(world, before, name);
  assert.match(q.reason, /an archived file with this name and different content exists/);
  assert.is(await sha256OfFile(q.file), sha256(bytes), 'quarantined bytes intact');
  assert.is(await sha256OfFile(stored), storedSha, 'archived copy unchanged');
});

test('after all that: every quarantined file is accounted for, the plan only warns about them', async () => {
  const q = await quarantined(world);
  assert.is(q.size, 4, [...q.keys()].join(', '));
  const r = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /! quarantined-files: 4 files in errors\//);
  assert.match(r.stdout, /No changes\./);
  const st = await world.pgbk(['status', '--json']);
  assert.is((JSON.parse(st.stdout) as { servers: { quarantined: number }[] }).servers[0]?.quarantined, 4);
});

// ---------------------------------------------------------------------------------------------
// wal-push: refuse (non-zero exit, PostgreSQL retries) instead of quarantining.

/** A directory postgres can read files from. */
async function pushDir(): Promise<string> {
  const dir = path.join(pushWorld.root, 'push');
  await mkdir(dir, { recursive: true });
  await chownToPostgres(dir);
  return dir;
}

async function walPush(file: string): Promise<{ code: number | null; stderr: string }> {
  await chownToPostgres(file);
  const r = await pushWorld.pgbk(['wal-push', 'main', file]);
  return { code: r.code, stderr: r.stderr };
}

test('wal-push world: PostgreSQL archives through pgbk wal-push into a postgres-owned catalog', async () => {
  const seg = await switchWal(pushWorld);
  assert.ok((await archivedSegments(pushWorld.catalog)).includes(seg), `${seg} archived by wal-push`);
});

test('wal-push archives a good segment (exit 0) and accepts an identical duplicate (exit 0)', async () => {
  // Hold PostgreSQL's own archiving so the segment is new to the catalog when we push it.
  await pushWorld.cluster.sql("ALTER SYSTEM SET archive_command = '/bin/false'");
  await pushWorld.cluster.sql('SELECT pg_reload_conf()');
  await pushWorld.cluster.sql('CREATE TABLE IF NOT EXISTS t (x int)');
  await pushWorld.cluster.sql('INSERT INTO t SELECT generate_series(1, 1000)');
  const name = await pushWorld.cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  const file = path.join(await pushDir(), name);
  await writeFile(file, await readFile(path.join(pushWorld.cluster.pgdata, 'pg_wal', name)));
  assert.not.ok((await archivedSegments(pushWorld.catalog)).includes(name));
  const first = await walPush(file);
  assert.is(first.code, 0, first.stderr);
  assert.ok((await archivedSegments(pushWorld.catalog)).includes(name));
  const stored = (await archivedSegmentFile(pushWorld.catalog, name))!;
  const storedSha = await sha256OfFile(stored);
  const dup = await walPush(file);
  assert.is(dup.code, 0, dup.stderr);
  assert.is(await sha256OfFile(stored), storedSha);
  // PostgreSQL's own retry, once archiving is back, meets the identical duplicate and succeeds.
  await pushWorld.cluster.sql('ALTER SYSTEM RESET archive_command');
  await pushWorld.cluster.sql('SELECT pg_reload_conf()');
  await switchWal(pushWorld);
  assert.is(await sha256OfFile(stored), storedSha);
});

test('wal-push refuses WAL of another cluster, a truncated segment, a non-WAL file and a conflicting duplicate', async () => {
  const dir = await pushDir();
  // The segment this cluster writes next is the plausible name; bring both clusters to the same one.
  const next = await advanceTo(pushWorld.cluster, await currentSegment(other));
  await pushWorld.cluster.sql('INSERT INTO filler VALUES (1)');
  await pushWorld.cluster.sql('CHECKPOINT'); // so pg_wal/<next> exists (read below for the truncated copy)
  await waitArchiverIdle(pushWorld.cluster); // what the switches closed is archived before the snapshot
  const before = await snapshotTree(path.join(pushWorld.catalog, 'main', 'wal'));

  const foreign = path.join(dir, next);
  await writeFile(foreign, await foreignSegment(next));
  let r = await walPush(foreign);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /refusing \w+: WAL belongs to cluster \d+, this catalog holds cluster \d+/);

  const truncatedDir = path.join(dir, 'truncated');
  await mkdir(truncatedDir, { recursive: true });
  await chownToPostgres(truncatedDir);
  const truncated = path.join(truncatedDir, next);
  await writeFile(truncated, (await readFile(path.join(pushWorld.cluster.pgdata, 'pg_wal', next))).subarray(0, 8192 * 3));
  r = await walPush(truncated);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /file is 24576 bytes, a segment is 16777216/);

  const junk = path.join(dir, `junk-${randomBytes(4).toString('hex')}`);
  await writeFile(junk, randomBytes(4096));
  r = await walPush(junk);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /junk-\w+ is not a WAL segment\b/);

  const segs = await archivedSegments(pushWorld.catalog);
  const name = segs[segs.length - 1]!;
  const stored = (await archivedSegmentFile(pushWorld.catalog, name))!;
  const storedSha = await sha256OfFile(stored);
  const conflictDir = path.join(dir, 'conflict');
  await mkdir(conflictDir, { recursive: true });
  await chownToPostgres(conflictDir);
  const conflict = path.join(conflictDir, name);
  await writeFile(conflict, await alteredCopy(pushWorld, name));
  r = await walPush(conflict);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /an archived file with this name and different content exists/);
  assert.is(await sha256OfFile(stored), storedSha, 'archived copy unchanged');

  assert.equal(await snapshotTree(path.join(pushWorld.catalog, 'main', 'wal')), before, 'the WAL archive is unchanged');
  // The refused files are left where they were (PostgreSQL owns pg_wal; wal-push never moves %p).
  for (const f of [foreign, truncated, junk, conflict]) assert.ok((await readFile(f)).length > 0, `${f} still there`);
});

test('wal-push world: the catalog is consistent for pgbk apply afterwards', async () => {
  const r = await pushWorld.pgbk(['apply']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const [b] = await listBackups(pushWorld);
  assert.is(b?.status, 'DONE');
});

test.run();
