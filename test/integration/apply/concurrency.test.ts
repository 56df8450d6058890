/**
 * Two `pgbk apply` at once against a real PostgreSQL 15: the per-server lock makes them take turns,
 * so a due backup is taken exactly once (the second apply waits, then sees nothing due), and with a
 * short --lock-timeout the second one gives up naming the holder. `pgbk status` shows the holder
 * while an apply runs. A dead holder whose pid was reused by another process does not block.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { processIdentity } from '../../../src/lib/process-identity.js';
import { listBackups, makeWorld, type RunResult, type World } from '../../support/pgbk.js';

let world: World;

interface LockJson {
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  readonly since: string;
}

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 5 }' });
  await world.cluster.sql('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g');
});

test.after(async () => {
  await world?.destroy();
});

async function lockHolder(): Promise<LockJson | null> {
  const r = await world.pgbk(['status', '--json']);
  assert.is(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { servers: { lock: LockJson | null }[] }).servers[0]?.lock ?? null;
}

/** Poll `pgbk status` until it reports a lock held by one of `pids` (or `done` settles first). */
async function waitForHolder(pids: readonly number[], done: Promise<unknown>): Promise<LockJson | undefined> {
  let finished = false;
  void done.then(() => (finished = true));
  while (!finished) {
    const holder = await lockHolder();
    if (holder !== null && pids.includes(holder.pid)) return holder;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

function backupResults(r: RunResult): string[] {
  return r.stdout.split('\n').filter((l) => /^main: base-backup .*: done/.test(l));
}

test('two applies started together take exactly one backup; status shows the holder meanwhile', async () => {
  const pids: number[] = [];
  const both = Promise.all([world.pgbk(['apply'], { onSpawn: (pid) => pids.push(pid) }), world.pgbk(['apply'], { onSpawn: (pid) => pids.push(pid) })]);
  const holder = await waitForHolder(pids, both);
  const [a, b] = await both;
  assert.is(a.code, 0, a.stdout + a.stderr);
  assert.is(b.code, 0, b.stdout + b.stderr);
  assert.ok(holder !== undefined, 'status showed the lock held by one of the applies');
  assert.is(holder!.command, 'pgbk apply');
  assert.ok(!Number.isNaN(Date.parse(holder!.since)));

  const taken = [...backupResults(a), ...backupResults(b)];
  assert.is(taken.length, 1, `exactly one apply took a backup:\n--- A ---\n${a.stdout}\n--- B ---\n${b.stdout}`);
  const backups = await listBackups(world);
  assert.is(backups.length, 1, JSON.stringify(backups));
  assert.is(backups[0]!.status, 'DONE');
  assert.is(await lockHolder(), null, 'lock released');

  const plan = await world.pgbk(['plan', '--detailed-exitcode']);
  assert.is(plan.code, 0, plan.stdout + plan.stderr);
});

test('a second apply with a short --lock-timeout fails naming the holder; the first takes the one backup', async () => {
  // A day later the 03:00 slot has fired again: a backup is due.
  const now = new Date(Date.now() + 86_400_000).toISOString();
  const before = (await listBackups(world)).length;
  // Hold archiving: pg_basebackup (-X none) then waits for its last segment, so the first apply
  // certainly still holds the lock when the second one tries.
  await world.cluster.sql("ALTER SYSTEM SET archive_command = 'exit 1'");
  await world.cluster.sql('SELECT pg_reload_conf()');
  let firstPid = -1;
  const first = world.pgbk(['apply', '--now', now], { onSpawn: (pid) => (firstPid = pid) });
  const holder = await waitForHolder([firstPid], first);
  let second: RunResult;
  try {
    second = await world.pgbk(['apply', '--now', now, '--lock-timeout', '0s']);
  } finally {
    await world.cluster.sql('ALTER SYSTEM RESET archive_command');
    await world.cluster.sql('SELECT pg_reload_conf()');
  }
  assert.ok(holder !== undefined, 'the first apply holds the lock');
  assert.is(second.code, 1, second.stdout + second.stderr);
  assert.match(second.stderr, new RegExp(`server main is locked by pid ${firstPid} on host \\S+ running "pgbk apply" since`));
  assert.match(second.stderr, /--lock-timeout/, 'the hint says how to wait longer');
  assert.is(second.stdout, '', 'the loser printed no plan: it never observed');

  const a = await first;
  assert.is(a.code, 0, a.stdout + a.stderr);
  assert.is(backupResults(a).length, 1, a.stdout);
  const backups = await listBackups(world);
  assert.is(backups.length, before + 1);
  assert.ok(backups.every((b) => b.status === 'DONE'));

  // Run again now that the lock is free: nothing left to do at that time.
  const again = await world.pgbk(['apply', '--now', now]);
  assert.is(again.code, 0, again.stdout + again.stderr);
  assert.is(backupResults(again).length, 0, again.stdout);
  assert.match(again.stdout, /No changes\./);
  assert.is((await listBackups(world)).length, before + 1);
});

test('a holder SIGKILLed long ago whose pid now runs another program: apply takes over its lock and fails its STARTED backup', async () => {
  // The "reused pid": a live process that is not the one that wrote the records (its start differs).
  const reuser = spawn('sleep', ['120'], { stdio: 'ignore' });
  try {
    const pid = reuser.pid!;
    const real = processIdentity(pid).processStart!;
    const [boot, ticks] = real.split(':');
    const stale = { pid, processStart: `${boot}:${Number(ticks) - 1}`, host: os.hostname() };
    const lockFile = path.join(world.catalog, 'main', 'lock');
    await writeFile(lockFile, JSON.stringify({ id: 'killed-holder', ...stale, command: 'pgbk apply', since: '2026-01-01T00:00:00Z' }), { mode: 0o640 });
    const id = '20990101T000000Z';
    const dir = path.join(world.catalog, 'main', 'backups', id);
    await mkdir(dir, { mode: 0o750 });
    await writeFile(
      path.join(dir, 'backup.json'),
      JSON.stringify({
        formatVersion: 1,
        id,
        server: 'main',
        slot: '2099-01-01T00:00:00.000Z',
        status: 'STARTED',
        method: 'basebackup',
        pgVersion: 150008,
        systemIdentifier: '7312345678901234567',
        beginTime: '2099-01-01T00:00:00.000Z',
        compression: 'zstd',
        keep: 'none',
        owner: { ...stale, startedAt: '2099-01-01T00:00:00.000Z' },
      }),
      { mode: 0o640 },
    );
    // Before the fix, kill(pid, 0) said "alive": the apply waited out --lock-timeout and failed.
    const r = await world.pgbk(['apply', '--lock-timeout', '2s']);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`backup ${id} marked FAILED \\(its owner pid ${pid} on \\S+ is gone\\)`));
    assert.is(await lockHolder(), null, 'the stale lock is gone and ours was released');
    const left = (await listBackups(world)).find((b) => b.id === id);
    assert.ok(left === undefined || left.status === 'FAILED', JSON.stringify(left));
  } finally {
    reuser.kill('SIGKILL');
  }
});

test.run();
