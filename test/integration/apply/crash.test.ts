/**
 * SIGKILL during a base backup, against a real PostgreSQL 15: the killed `pgbk apply` leaves a
 * STARTED backup whose owner is dead. Afterwards the catalog must stay readable (`pgbk list`), show
 * that backup FAILED, and the next apply must take a new backup that reaches DONE and clean the
 * failed one up once the new one is DONE; then the plan is empty.
 *
 * To kill at a known point, the apply runs pg_basebackup through PGBK_PG_BINDIR = a directory
 * whose pg_basebackup execs the real one with --max-rate=32k (the slowest it allows): the copy is
 * then certainly still running when we kill (pg_basebackup -X stream no longer waits for archiving
 * at its end, so holding archiving is not enough). Archiving is held too, so the backup's end
 * segment cannot arrive before the kill.
 */
import { test } from 'uvu';
import { waitFor as waitUntil } from '../../support/wait.js';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { listBackups, makeWorld, type RunResult, type World } from '../../support/pgbk.js';
import { isAlive, PG_BINDIR, tempDir } from '../../support/postgres.js';

let world: World;
/** PGBK_PG_BINDIR for the apply that is killed: the real programs, and a throttled pg_basebackup. */
let slowBinDir = '';
/** pg_basebackup processes seen: killed by PID in after() if still alive. */
const strays = new Set<number>();

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 2 }' });
  await world.cluster.sql('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10000) g');
  slowBinDir = path.join(await tempDir('pgbk-slowbin-'), 'bin');
  await mkdir(slowBinDir);
  for (const name of await readdir(PG_BINDIR)) {
    if (name !== 'pg_basebackup') await symlink(path.join(PG_BINDIR, name), path.join(slowBinDir, name));
  }
  const wrapper = path.join(slowBinDir, 'pg_basebackup');
  await writeFile(wrapper, `#!/bin/sh\nexec ${path.join(PG_BINDIR, 'pg_basebackup')} "$@" --max-rate=32k\n`);
  await chmod(wrapper, 0o755);
});

test.after(async () => {
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await world?.destroy();
});

/** Direct children of `pid` (Linux /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8');
      for (const c of text.trim().split(/\s+/)) if (c !== '') out.push(Number(c));
    } catch {
      // task ended
    }
  }
  return out;
}

async function cmdlineOf(pid: number): Promise<string> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  } catch {
    return '';
  }
}

async function commOf(pid: number): Promise<string> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return '';
  }
}

function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  return waitUntil(what, probe, { timeoutMs, stepMs: 20 });
}

async function startedBackup(): Promise<string | undefined> {
  const dir = path.join(world.catalog, 'main', 'backups');
  let ids: string[];
  try {
    ids = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const id of ids) {
    try {
      const rec = JSON.parse(await readFile(path.join(dir, id, 'backup.json'), 'utf8')) as { status: string };
      if (rec.status === 'STARTED') return id;
    } catch {
      // not written yet
    }
  }
  return undefined;
}

let crashedId = '';

test('SIGKILL of apply while pg_basebackup runs leaves a STARTED record and no running pg_basebackup', async () => {
  await world.cluster.sql("ALTER SYSTEM SET archive_command = 'exit 1'");
  await world.cluster.sql('SELECT pg_reload_conf()');
  // The archiver reloads on its own schedule: make sure it really runs the failing command now (a failure
  // is counted), or a loaded machine lets the backup's end segment through the old command.
  const failedBefore = Number((await world.cluster.sql('SELECT failed_count FROM pg_stat_archiver')).trim());
  await world.cluster.sql('SELECT pg_switch_wal()');
  await waitFor('the archiver to run the failing archive_command', async () =>
    Number((await world.cluster.sql('SELECT failed_count FROM pg_stat_archiver')).trim()) > failedBefore ? true : undefined,
  );
  let applyPid = -1;
  const run: Promise<RunResult> = world.pgbk(['apply'], { onSpawn: (pid) => (applyPid = pid), env: { PGBK_PG_BINDIR: slowBinDir } });
  crashedId = await waitFor('a STARTED backup.json', startedBackup);
  // The copying pg_basebackup, not the short `pg_basebackup --version` pgbk runs first to learn
  // the client's major version (catching that one made this test flaky).
  const bb = await waitFor('pg_basebackup under the apply', async () => {
    for (const c of await childrenOf(applyPid)) if ((await commOf(c)) === 'pg_basebackup' && (await cmdlineOf(c)).includes('--pgdata=')) return c;
    return undefined;
  });
  strays.add(bb);
  // pg_basebackup copies at 32 kB/s: mid-backup.
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(isAlive(bb), 'pg_basebackup still running before the kill');
  process.kill(applyPid, 'SIGKILL');
  const result = await run;
  assert.is(result.signal, 'SIGKILL');
  // pg_basebackup is spawned so that it dies with its parent (parent-death signal); a stray one
  // would hold a replication connection until the server's timeout.
  const gone = await waitFor('pg_basebackup to exit after its parent died', async () => (isAlive(bb) ? undefined : true), 10_000).catch(() => false);
  assert.ok(gone, `pg_basebackup ${bb} outlived the killed apply`);
  strays.delete(bb);

  const rec = JSON.parse(await readFile(path.join(world.catalog, 'main', 'backups', crashedId, 'backup.json'), 'utf8')) as {
    status: string;
    owner?: { pid: number };
  };
  assert.is(rec.status, 'STARTED', 'the record on disk is what the killed process left');
  assert.is(rec.owner?.pid, applyPid);

  await world.cluster.sql('ALTER SYSTEM RESET archive_command');
  await world.cluster.sql('SELECT pg_reload_conf()');
});

test('afterwards the catalog is readable and the interrupted backup shows as FAILED', async () => {
  const list = await listBackups(world);
  assert.is(list.length, 1);
  assert.is(list[0]!.id, crashedId);
  assert.is(list[0]!.status, 'FAILED');
  const text = await world.pgbk(['list']);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`${crashedId}\\s+FAILED`));
  const show = await world.pgbk(['show', 'main', crashedId]);
  assert.is(show.code, 0, show.stderr);
  assert.match(show.stdout, /Status:\s+FAILED \(interrupted: pid \d+ on \S+ is gone\)/);
  const status = await world.pgbk(['status', '--json']);
  assert.is(status.code, 0, status.stderr);
  const plan = await world.pgbk(['plan']);
  assert.is(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /\+ base-backup/, 'a FAILED backup does not satisfy the schedule');
  assert.not.match(plan.stdout, /cleanup-failed/, 'no newer DONE backup yet: the failed one stays');
});

test('the next apply takes over the dead lock, takes a new backup to DONE and cleans up the failed one', async () => {
  const r = await world.pgbk(['apply', '--lock-timeout', '5s']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`backup ${crashedId} marked FAILED`));
  assert.match(r.stdout, /main: base-backup .*: done/);
  assert.match(r.stdout, new RegExp(`main: cleanup-failed ${crashedId}: done`));
  const list = await listBackups(world);
  assert.is(list.length, 1, JSON.stringify(list));
  assert.is.not(list[0]!.id, crashedId);
  assert.is(list[0]!.status, 'DONE');
  assert.not.ok(existsSync(path.join(world.catalog, 'main', 'backups', crashedId)), 'failed backup removed from disk');
  const leftovers = (await readdir(path.join(world.catalog, 'main', 'backups'))).filter((n) => n !== list[0]!.id);
  assert.equal(leftovers, [], 'nothing else left in backups/');

  const plan = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(plan.code, 0, plan.stdout + plan.stderr);
  assert.match(plan.stdout, /No changes\./);
});

test.run();
