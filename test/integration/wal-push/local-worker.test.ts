/**
 * Local archiving through the long-lived worker (issue 13 item 3): PostgreSQL's archive_command is
 * the one `pgbk wal-push --print-archive-command` prints for this host's catalog — a shell fast
 * path in front of `pgbk wal-push --worker` — and the worker archives with the same rule as the
 * plain local wal-push: 0 only once the segment is durable in the catalog, an identical duplicate
 * is fine, other content is refused (non-zero) and a copy quarantined, nothing overwritten, and a
 * worker killed mid-push loses nothing (PostgreSQL retries, the retry starts a fresh worker).
 */
import { readFile, readdir, realpath, rm, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listArchivedWal, readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { readWalHeader } from '../../../src/pg/wal-header.js';
import { localWorkerKey, runtimeDir } from '../../../src/wal-push/target.js';
import { archivedSegmentFile, makeWorld, sha256OfFile, type World } from '../../support/pgbk.js';
import { chownToPostgres, tempDir } from '../../support/postgres.js';

const POSTGRES_UID = 101;
let world: World;
/** Worker keys whose workers this file started (stopped by PID at the end). */
const keys: string[] = [];

function postgresRuntimeDir(): string {
  return runtimeDir().replace(/pgbk-\d+$/, `pgbk-${POSTGRES_UID}`);
}

async function logText(key: string): Promise<string> {
  return readFile(path.join(postgresRuntimeDir(), `walpush-${key}.log`), 'utf8').catch(() => '');
}

async function workerPids(key: string): Promise<number[]> {
  return [...new Set([...(await logText(key)).matchAll(/wal-push-worker\[(\d+)\]/g)].map((m) => Number(m[1])))];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readyFiles(): Promise<string[]> {
  return (await readdir(path.join(world.cluster.pgdata, 'pg_wal', 'archive_status'))).filter((n) => n.endsWith('.ready'));
}

async function waitNoBacklog(ms: number): Promise<string[]> {
  const t0 = Date.now();
  let ready = await readyFiles();
  while (ready.length > 0 && Date.now() - t0 < ms) {
    await new Promise((r) => setTimeout(r, 200));
    ready = await readyFiles();
  }
  return ready;
}

async function switchSegments(n: number): Promise<void> {
  await world.cluster.sql('CREATE TABLE IF NOT EXISTS filler (x int, pad text)');
  for (let i = 0; i < n; i++) {
    await world.cluster.sql("INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g");
    await world.cluster.sql('SELECT pg_switch_wal()');
  }
}

/** Every archived segment from the first to `last`: present (no gap), checksum-verified, this cluster's. */
async function assertContiguous(last: string): Promise<number> {
  const archived = await listArchivedWal(world.catalog, 'main');
  const segs = archived.segments.filter((s) => s <= last);
  assert.ok(segs.includes(last), `${last} not in the catalog`);
  const first = segs[0]!;
  assert.is(parseInt(last.slice(16), 16) - parseInt(first.slice(16), 16) + 1, segs.length, `gap in the archive: ${segs.join(' ')}`);
  const sysid = await world.cluster.sql('SELECT system_identifier FROM pg_control_system()');
  for (const s of segs) assert.is(readWalHeader(await readArchivedWal(world.catalog, 'main', s))?.systemIdentifier, sysid, s);
  return segs.length;
}

let printed = '';
let key = '';

test.before(async () => {
  world = await makeWorld({ archive: 'wal-push', serverYaml: 'retention: { redundancy: 1 }' });
});

test.after(async () => {
  for (const k of keys) for (const pid of await workerPids(k)) if (alive(pid)) process.kill(pid, 'SIGTERM');
  await world?.destroy();
});

test('--print-archive-command without --to: the fast path in front of the local worker client', async () => {
  const r = await world.pgbk(['wal-push', '--print-archive-command', '--pgdata', world.cluster.pgdata, 'main']);
  assert.is(r.code, 0, r.stderr);
  printed = r.stdout.trim();
  assert.match(printed, /\[ -f "\$m" \] && \[ %p -nt "\$m" \] && \[ %p -ot "\$m\.hi" \]/);
  assert.match(printed, / wal-push --config \S+pgbk\.yaml --worker main %p$/);
  key = localWorkerKey(world.configPath, 'main', world.cluster.pgdata);
  keys.push(key);
  assert.ok(printed.includes(`walpush-${key}.sock`), printed);
  // A directory that is not the data directory (by default the current one) is refused: the
  // printed command would never find its worker.
  const notData = await world.pgbk(['wal-push', '--print-archive-command', '--pgdata', path.dirname(world.cluster.pgdata), 'main']);
  assert.is.not(notData.code, 0);
  assert.match(notData.stderr, /is not a PostgreSQL data directory \(no global\/pg_control\)/);
  assert.is(notData.stdout, '');
  // Bad use is refused before anything happens.
  const bad = await world.pgbk(['wal-push', '--pgdata', world.cluster.pgdata, 'main', 'pg_wal/x']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /--pgdata and --wait-seconds go with --print-archive-command/);
});

test('PostgreSQL archives through the printed command: durable, contiguous, accepted by pgbk verify; the client rarely runs', async () => {
  const c = world.cluster;
  // Count the runs of the real client: wrap the exec of the fallback.
  const dir = await tempDir('pgbk-localpush-');
  const counter = path.join(dir, 'count.sh');
  const runs = path.join(dir, 'runs');
  await writeFile(counter, `#!/bin/sh\necho "$*" >> ${runs}\nexec "$@"\n`, { mode: 0o755 });
  await writeFile(runs, '');
  await chownToPostgres(dir);
  assert.ok(printed.includes(' exec /'), printed);
  const counted = printed.replace(' exec /', ` exec ${counter} /`);
  await c.sql(`ALTER SYSTEM SET archive_command = '${counted.replace(/'/g, "''")}'`);
  await c.sql('SELECT pg_reload_conf()');
  const before = (await c.sql('SELECT archived_count, failed_count FROM pg_stat_archiver')).split('|').map(Number);
  await switchSegments(10);
  assert.equal(await waitNoBacklog(60_000), [], await logText(key));
  const stats = (await c.sql('SELECT archived_count, failed_count, last_archived_wal FROM pg_stat_archiver')).split('|');
  const archivedNow = Number(stats[0]) - before[0]!;
  assert.ok(archivedNow >= 10, `only ${archivedNow} archived`);
  assert.is(Number(stats[1]) - before[1]!, 0, `archive failures:\n${await logText(key)}\n${c.logTail(20)}`);
  await assertContiguous(stats[2]!);
  const log = await logText(key);
  assert.match(log, /archiving into \S+; pushing main from /);
  const clientRuns = (await readFile(runs, 'utf8')).split('\n').filter((l) => l !== '').length;
  assert.ok(clientRuns <= archivedNow / 2, `the client ran ${clientRuns} times for ${archivedNow} files`);
  // A base backup (its end segment archived through the same command) and verify accept the catalog.
  const b = await world.pgbk(['backup', 'main']);
  assert.is(b.code, 0, b.stdout + b.stderr);
  const v = await world.pgbk(['verify', 'main']);
  assert.is(v.code, 0, v.stdout + v.stderr);
  // From here on the printed command as it is (the counting wrapper goes away with its directory).
  await c.sql(`ALTER SYSTEM SET archive_command = '${printed.replace(/'/g, "''")}'`);
  await c.sql('SELECT pg_reload_conf()');
  await rm(dir, { recursive: true, force: true });
  const ok = await world.pgbk(['check', 'main']);
  assert.match(ok.stdout, /OK archive_command: /, ok.stdout);
  // The same command printed for another data directory (its worker key differs): check says the
  // fast path never finds its worker, and how to print the right one.
  const other = printed.replaceAll(`walpush-${key}`, 'walpush-0123456789abcdef');
  await c.sql(`ALTER SYSTEM SET archive_command = '${other.replace(/'/g, "''")}'`);
  await c.sql('SELECT pg_reload_conf()');
  try {
    const bad = await world.pgbk(['check', 'main']);
    assert.is.not(bad.code, 0);
    assert.match(
      bad.stdout,
      /FAILED archive_command: archive_command's fast path was printed for another data directory: it waits for worker walpush-0123456789abcdef\.sock/,
    );
    assert.ok(bad.stdout.includes(`wal-push --print-archive-command --pgdata ${await realpath(c.pgdata)} main`), bad.stdout);
  } finally {
    await c.sql(`ALTER SYSTEM SET archive_command = '${printed.replace(/'/g, "''")}'`);
    await c.sql('SELECT pg_reload_conf()');
  }
});

test('a conflicting segment (same name, other content) is refused non-zero and quarantined once; nothing overwritten', async () => {
  const segs = (await listArchivedWal(world.catalog, 'main')).segments;
  const name = segs[segs.length - 1]!;
  const stored = (await archivedSegmentFile(world.catalog, name))!;
  const storedSha = await sha256OfFile(stored);
  // A data directory of its own (its own worker), holding the altered copy where PostgreSQL would.
  const fake = await tempDir('pgbk-conflict-');
  await mkdir(path.join(fake, 'pg_wal'));
  const bytes = Buffer.from(await readArchivedWal(world.catalog, 'main', name));
  const at = 1024 * 1024 + 17;
  bytes[at] = (bytes[at]! ^ 0xff) & 0xff;
  await writeFile(path.join(fake, 'pg_wal', name), bytes);
  await chownToPostgres(fake);
  const fakeKey = localWorkerKey(world.configPath, 'main', fake);
  keys.push(fakeKey);
  const push = () => world.pgbk(['wal-push', '--worker', 'main', `pg_wal/${name}`], { cwd: fake });
  const r = await push();
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /an archived file with this name and different content exists/);
  assert.is(await sha256OfFile(stored), storedSha, 'archived copy unchanged');
  const errors = path.join(world.catalog, 'main', 'errors');
  const copies = (await readdir(errors)).filter((n) => n.startsWith(`${name}.`) && !n.endsWith('.reason'));
  assert.is(copies.length, 1, copies.join(' '));
  assert.equal(await readFile(path.join(errors, copies[0]!)), bytes, 'the quarantined copy is the refused content');
  assert.match(await readFile(path.join(errors, `${copies[0]}.reason`), 'utf8'), /different content exists[\s\S]*original: \S+pg_wal/);
  // PostgreSQL retries: refused again, still one copy in errors/, %p left where it is, no marker.
  const again = await push();
  assert.is(again.code, 1, again.stderr);
  assert.is((await readdir(errors)).filter((n) => n.startsWith(`${name}.`) && !n.endsWith('.reason')).length, 1);
  assert.equal(await readFile(path.join(fake, 'pg_wal', name)), bytes);
  const marker = path.join(postgresRuntimeDir(), `walpush-${fakeKey}.acked`, name);
  assert.is(await readFile(marker, 'utf8').catch(() => 'none'), 'none');
  await rm(fake, { recursive: true, force: true });
});

test('the worker killed mid-push loses nothing: PostgreSQL retries and a fresh worker archives every segment', async () => {
  const c = world.cluster;
  const killed: number[] = [];
  let switched = false;
  // Kill whichever worker runs while a backlog is being archived, twice. Once every segment is
  // switched and the backlog is gone there is nothing left to kill a worker in the middle of:
  // stop looking then instead of polling out the 60 s.
  const killer = (async () => {
    const t0 = Date.now();
    while (killed.length < 2 && Date.now() - t0 < 60_000) {
      const backlog = (await readyFiles()).length > 0;
      if (switched && !backlog) break;
      const pids = (await workerPids(key)).filter((p) => alive(p) && !killed.includes(p));
      if (pids.length > 0 && backlog) {
        for (const pid of pids) process.kill(pid, 'SIGKILL');
        killed.push(...pids);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await switchSegments(16);
  switched = true;
  await killer;
  assert.ok(killed.length >= 1, 'no worker was killed mid-push');
  assert.equal(await waitNoBacklog(120_000), [], `${await logText(key)}\n${c.logTail(20)}`);
  const stats = (await c.sql('SELECT last_archived_wal FROM pg_stat_archiver')).trim();
  const n = await assertContiguous(stats);
  assert.ok(n >= 26, `only ${n} segments`);
  const v = await world.pgbk(['verify', 'main']);
  assert.is(v.code, 0, v.stdout + v.stderr);
  const errors = (await readdir(path.join(world.catalog, 'main', 'errors'))).filter((e) => !e.endsWith('.reason'));
  assert.is(errors.length, 1, `only the conflict of the test before is quarantined: ${errors.join(' ')}`);
});

test.run();
