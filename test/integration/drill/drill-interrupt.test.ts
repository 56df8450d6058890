/**
 * Restore drills that do not end well (issue 14), against a real PostgreSQL 15 through the real CLI;
 * one source cluster, two backups (a small one, then one with a large file in it):
 *
 *  1. a check whose row is wider than one boolean column ('t' first) is FAILED, saying what came back;
 *  2. pgbk killed (SIGKILL) while its drill's copy runs: the next apply stops the copy by its PID
 *     (after checking that PID's data directory is the scratch copy), removes the scratch directory
 *     and records the drill FAILED "interrupted", saying so in its output;
 *  3. a time limit shorter than the restore (a backup with 400 MB to decompress, gzip): the restore
 *     is stopped mid-unpack, the drill recorded FAILED, timed out in phase restore, nothing left.
 *
 * The catalog belongs to postgres (wal-push world), so pgbk — and the drill's PostgreSQL — run as
 * postgres, as in production.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, switchWal, type RunResult, type World } from '../../support/pgbk.js';
import { chownToPostgres, isAlive } from '../../support/postgres.js';

let world: World;
let scratch: string;
const WEEK = 7 * 86_400_000;

interface DrillJson {
  id: string;
  status: string;
  owner?: { pid: number };
  scratch?: string;
  backupId?: string;
  check?: { ok: boolean; detail: string };
  timedOut?: boolean;
  phase?: string;
  errors: string[];
}

async function drills(): Promise<DrillJson[]> {
  const dir = path.join(world.catalog, 'main', 'drills');
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(dir, n), 'utf8')) as DrillJson));
}

function config(drill: string, backup = 'backup: { method: basebackup }'): Promise<void> {
  return world.writeConfig(
    `${backup}\nretention: { redundancy: 5 }\ndrill:\n  schedule: "0 5 * * 0"\n  scratchDir: ${scratch}\n${drill
      .trim()
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n')}`,
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Still running: exists and is not a zombie (an orphan waits for init to reap it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** PIDs of the processes whose parent is `pid` (ps --ppid). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    return [];
  }
}

test.before(async () => {
  world = await makeWorld({ archive: 'wal-push', serverYaml: 'backup: { method: basebackup }\nretention: { redundancy: 5 }' });
  scratch = path.join(world.root, 'scratch');
  await mkdir(scratch);
  await chownToPostgres(scratch);
});

test.after(async () => {
  await world?.destroy();
});

test('setup: one DONE backup with WAL after it', async () => {
  await switchWal(world);
  const b = await world.pgbk(['backup', 'main']);
  assert.is(b.code, 0, b.stdout + b.stderr);
  await switchWal(world);
});

test('a check returning a wider row that starts with true fails, saying what came back', async () => {
  await config('timeLimit: 5m\ncheck:\n  sql: "SELECT true, 2"');
  const apply = await world.pgbk(['apply']);
  assert.is(apply.code, 1, apply.stdout + apply.stderr);
  const d = (await drills()).at(-1);
  assert.is(d?.status, 'FAILED', JSON.stringify(d));
  assert.is(d?.check?.ok, false);
  assert.match(d?.errors.join(';') ?? '', /check sql "SELECT true, 2" returned 2 columns: true, 2 \(must be one column, true\)/);
  assert.equal(await readdir(scratch), []);
});

test('pgbk killed mid-drill: the next apply stops the copy by its PID, removes the scratch copy and records FAILED (interrupted)', async () => {
  // A check that waits: the copy runs, promoted, while pgbk waits on the query.
  await config('timeLimit: 10m\ncheck:\n  sql: "SELECT pg_sleep(600) IS NOT NULL"');
  const now = new Date(Date.now() + WEEK).toISOString();
  let done: Promise<RunResult> | undefined;
  done = world.pgbk(['apply', '--now', now]);
  const running = await until('a RUNNING drill with its copy started', async () => {
    const d = (await drills()).find((r) => r.status === 'RUNNING');
    if (d?.scratch === undefined || d.owner === undefined) return undefined;
    const pidFile = await readFile(path.join(d.scratch, 'data', 'postmaster.pid'), 'utf8').catch(() => '');
    const pid = Number(pidFile.split('\n')[0]);
    // Promoted (the check runs): recovery.signal is gone.
    const promoted = await stat(path.join(d.scratch, 'data', 'recovery.signal')).then(
      () => false,
      () => true,
    );
    return pid > 0 && isAlive(pid) && promoted ? { d, pid } : undefined;
  });
  process.kill(running.d.owner!.pid, 'SIGKILL');
  const killed = await done;
  done = undefined;
  assert.ok(killed.code !== 0, killed.stdout + killed.stderr);
  assert.ok(isAlive(running.pid), 'the copy outlived pgbk (what the next apply must clean up)');
  const scratchDir = running.d.scratch!;

  const apply = await world.pgbk(['apply', '--now', now]);
  assert.is(apply.code, 0, apply.stdout + apply.stderr);
  assert.match(
    apply.stdout + apply.stderr,
    new RegExp(
      `restore drill ${running.d.id} was interrupted \\(owner pid ${running.d.owner!.pid} on \\S+ is gone\\): stopped its PostgreSQL \\(pid ${running.pid}\\), removed ${scratchDir}`,
    ),
  );
  assert.not.ok(isAlive(running.pid), 'the copy was stopped');
  assert.equal(await readdir(scratch), [], 'the scratch copy is removed');
  const d = (await drills()).find((r) => r.id === running.d.id);
  assert.is(d?.status, 'FAILED', JSON.stringify(d));
  assert.is(d?.owner, undefined);
  assert.match(d?.errors.join(';') ?? '', new RegExp(`interrupted: owner pid ${running.d.owner!.pid} on \\S+ gone`));
  // The source cluster was never touched.
  assert.ok(isAlive(world.cluster.pid));
});

test('a time limit shorter than the restore stops the restore mid-unpack: FAILED, timed out in phase restore, nothing left', async () => {
  // A backup that takes measurably longer than 1 s to restore: 400 MB to decompress with gzip.
  const ballast = path.join(world.cluster.pgdata, 'pgbk_test_ballast');
  execFileSync('dd', ['if=/dev/zero', `of=${ballast}`, 'bs=1M', 'count=400', 'status=none']);
  await chownToPostgres(ballast);
  const gzip = 'backup: { method: basebackup, compression: gzip }';
  await config('timeLimit: 5m', gzip);
  const b = await world.pgbk(['backup', 'main']);
  assert.is(b.code, 0, b.stdout + b.stderr);
  await switchWal(world);

  await config('timeLimit: 1s', gzip);
  const now = new Date(Date.now() + 2 * WEEK).toISOString();
  // Children of pgbk seen during the restore: tar and its gzip must all be gone afterwards.
  const seen = new Set<number>();
  let pgbkPid = 0;
  let runuserPid = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      if (pgbkPid === 0 && runuserPid > 0) pgbkPid = childrenOf(runuserPid)[0] ?? 0;
      if (pgbkPid > 0) {
        for (const c of childrenOf(pgbkPid)) {
          seen.add(c);
          for (const g of childrenOf(c)) seen.add(g);
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const apply = await world.pgbk(['apply', '--now', now], {
    // pgbk runs as postgres: runuser's child is pgbk.
    onSpawn: (pid) => {
      runuserPid = pid;
    },
  });
  watching = false;
  await watcher;
  assert.is(apply.code, 1, apply.stdout + apply.stderr);
  const d = (await drills()).at(-1);
  assert.is(d?.status, 'FAILED', JSON.stringify(d) + apply.stdout + apply.stderr);
  assert.is(d?.timedOut, true);
  assert.is(d?.phase, 'restore');
  // Mid-unpack as a rule (the restore takes seconds); before it when the machine is slow to get there.
  assert.match(d?.errors.join(';') ?? '', /time limit 1s reached during the restore: restore aborted (while|before) unpacking/);
  assert.match(apply.stdout + apply.stderr, /drill \S+ FAILED.*time limit 1s reached during the restore/);
  assert.equal(await readdir(scratch), [], 'the scratch copy is removed');
  for (const pid of seen) assert.not.ok(running(pid), `child ${pid} of pgbk is gone`);
  assert.ok(isAlive(world.cluster.pid));
});

test.run();
