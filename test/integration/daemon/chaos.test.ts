/**
 * The daemon under light pgbench load, killed with SIGTERM or SIGKILL at random moments and
 * restarted, while a backup schedule fires every 10 seconds (40 s of chaos: four slots, a dozen
 * kills). Afterwards:
 *   - every segment from the first backup's beginWal to the last one PostgreSQL closed is in the
 *     archive and reads back intact (`pgbk verify main all`),
 *   - at most one completed backup per schedule slot,
 *   - SIGTERM always ended the daemon with exit status 0.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { readFile, readdir } from 'node:fs/promises';
import { makeWorld, type World } from '../../support/pgbk.js';
import { PG_BINDIR, waitForQuery } from '../../support/postgres.js';
import { startDaemon } from './daemon-process.js';

let world: World;
let pgbench: ChildProcess | undefined;

const SEG = 16 * 1024 * 1024;

function segno(name: string): number {
  return parseInt(name.slice(8, 16), 16) * (0x100000000 / SEG) + parseInt(name.slice(16, 24), 16);
}

async function archivedSegments(): Promise<string[]> {
  const root = path.join(world.catalog, 'main', 'wal');
  const out: string[] = [];
  for (const d of await readdir(root)) {
    if (!/^[0-9A-F]{16}$/.test(d)) continue;
    for (const f of await readdir(path.join(root, d))) {
      const m = /^([0-9A-F]{24})(\.zst|\.gz)?$/.exec(f);
      if (m !== null) out.push(m[1]!);
    }
  }
  return out.sort();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { schedule: "*/10 * * * * *", compression: none }\nretention: { redundancy: 1000 }' });
  const c = world.cluster;
  const args = ['-h', c.socketDir, '-p', String(c.port), '-U', 'postgres'];
  const init = spawn(path.join(PG_BINDIR, 'pgbench'), [...args, '-i', '-s', '1', '-q', 'postgres'], { stdio: 'ignore' });
  await new Promise((r) => init.on('close', r));
  // Light, rate-limited load for the whole test.
  pgbench = spawn(path.join(PG_BINDIR, 'pgbench'), [...args, '-c', '2', '-R', '100', '-T', '600', 'postgres'], { stdio: 'ignore' });
});

test.after(async () => {
  if (pgbench !== undefined && pgbench.exitCode === null) pgbench.kill('SIGTERM');
  await world?.destroy();
});

test('SIGTERM/SIGKILL at random moments lose no segment and never double a slot', async () => {
  let stopSwitching = false;
  // pgbench alone fills a segment only every few minutes: close segments often so many arrive.
  const switcher = (async () => {
    while (!stopSwitching) {
      await world.cluster.sql('SELECT pg_switch_wal()').catch(() => undefined);
      await sleep(300);
    }
  })();

  const rounds: string[] = [];
  const deadline = Date.now() + 40_000;
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  while (Date.now() < deadline) {
    const d = startDaemon(world.configPath, ['--reconcile-interval', '2s', '--shutdown-timeout', '30s']);
    await d.waitForLog(/daemon started/, 30_000);
    await sleep(500 + Math.floor(random() * 3000));
    const signal = random() < 0.5 ? 'SIGTERM' : 'SIGKILL';
    process.kill(d.pid, signal);
    const exit = await d.exited;
    rounds.push(`${signal}→${exit.code ?? exit.signal}`);
    if (signal === 'SIGTERM') assert.is(exit.code, 0, `SIGTERM exit status\n${d.log().slice(-3000)}`);
  }
  stopSwitching = true;
  await switcher;
  pgbench?.kill('SIGTERM');

  // Final run: let the daemon drain everything PostgreSQL has archived so far.
  const lastClosed = await world.cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  await waitForQuery(world.cluster, `SELECT last_archived_wal >= '${lastClosed}' FROM pg_stat_archiver`, 't', 60_000);
  const d = startDaemon(world.configPath, ['--reconcile-interval', '2s']);
  await d.waitForLog(/daemon started/);
  const start = Date.now();
  for (;;) {
    const segs = await archivedSegments();
    if (segs.includes(lastClosed)) break;
    if (Date.now() - start > 60_000) throw new Error(`${lastClosed} never archived\n${d.log().slice(-3000)}`);
    await sleep(200);
  }
  // Let a backup that may be in flight finish, then stop cleanly.
  await sleep(3000);
  process.kill(d.pid, 'SIGTERM');
  assert.is((await d.exited).code, 0, d.log().slice(-3000));

  const backupsDir = path.join(world.catalog, 'main', 'backups');
  const list: { id: string; status: string; slot: string; beginWal: string }[] = [];
  for (const id of (await readdir(backupsDir)).filter((n) => /^\d{8}T\d{6}Z$/.test(n)).sort()) {
    list.push(JSON.parse(await readFile(path.join(backupsDir, id, 'backup.json'), 'utf8')) as (typeof list)[number]);
  }
  const done = list.filter((b) => b.status === 'DONE');
  assert.ok(done.length >= 2, `backups taken across restarts: ${JSON.stringify(list.map((b) => [b.id, b.status]))} rounds ${rounds.join(' ')}`);
  const slots = new Map<string, number>();
  for (const b of done) slots.set(b.slot, (slots.get(b.slot) ?? 0) + 1);
  for (const [slot, n] of slots) assert.is(n, 1, `slot ${slot} has ${n} completed backups`);

  const segs = await archivedSegments();
  const first = done[0]!.beginWal;
  const have = new Set(segs.map(segno));
  for (let s = segno(first); s <= segno(lastClosed); s++) assert.ok(have.has(s), `segment number ${s} (from ${first} to ${lastClosed}) is archived`);

  const verify = await world.pgbk(['verify', 'main', 'all', '--quick']);
  assert.is(verify.code, 0, verify.stdout + verify.stderr);
  console.log(`  chaos: ${rounds.length} rounds (${rounds.join(' ')}), ${done.length} backups DONE, ${segs.length} segments archived`);
});

test.run();
