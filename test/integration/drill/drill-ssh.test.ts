// test-lane: light — one drill over ssh without a time limit (PASSED/refused); only 90 s waits
/**
 * A restore drill on a drill host over SSH (drill.host, issue 14) against a real PostgreSQL 15 and a
 * real sshd (the same machine, logged in as postgres), through the real CLI; one cluster, one backup:
 *
 *  1. apply restores onto the drill host the way `restore --remote` does, starts PostgreSQL there
 *     (archiving off, socket in the scratch directory), checks it with psql, stops it, removes the
 *     scratch copy and records PASSED with the host named and the measured seconds;
 *  2. a week later with scratchDir a symbolic link to the source's pgdata on that host: refused
 *     (real paths compared there) and recorded FAILED, the data directory untouched.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, switchWal, type World } from '../../support/pgbk.js';
import { chownToPostgres, isAlive } from '../../support/postgres.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';

let world: World;
let sshd: TestSshd;
let scratch: string;
const WEEK = 7 * 86_400_000;

interface DrillJson {
  id: string;
  status: string;
  host?: string;
  backupId?: string;
  restoreSeconds?: number;
  replaySeconds?: number;
  walBytes?: number;
  check?: { ok: boolean; detail: string };
  errors: string[];
}

async function drills(): Promise<DrillJson[]> {
  const dir = path.join(world.catalog, 'main', 'drills');
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(dir, n), 'utf8')) as DrillJson));
}

function hostUrl(): string {
  return `ssh://postgres@127.0.0.1:${sshd.port}`;
}

function config(scratchDir: string): Promise<void> {
  return world.writeConfig(
    [
      'backup: { method: basebackup }',
      'retention: { redundancy: 5 }',
      `pgdata: ${world.cluster.pgdata}`,
      'drill:',
      '  schedule: "0 5 * * 0"',
      `  host: ${hostUrl()}`,
      `  identityFile: ${sshd.postgresIdentityFile}`,
      `  knownHosts: ${sshd.knownHosts}`,
      `  scratchDir: ${scratchDir}`,
      '  timeLimit: 2m',
      '  check:',
      '    sql: "SELECT count(*) > 0 FROM pgbk_fill"',
      '    amcheck: [postgres]',
    ].join('\n'),
  );
}

test.before(async () => {
  sshd = await startSshd();
  world = await makeWorld({ archive: 'wal-push', serverYaml: 'backup: { method: basebackup }\nretention: { redundancy: 5 }' });
  scratch = path.join(world.root, 'drill-host-scratch');
  await mkdir(scratch);
  await chownToPostgres(scratch);
});

test.after(async () => {
  await world?.destroy();
  await sshd?.stop();
});

test('a drill on a drill host over SSH passes and is recorded with the host; a scratchDir that is the pgdata there is refused', async () => {
  await switchWal(world);
  const b = await world.pgbk(['backup', 'main']);
  assert.is(b.code, 0, b.stdout + b.stderr);
  for (let i = 0; i < 2; i++) await switchWal(world);

  await config(scratch);
  const plan = await world.pgbk(['plan']);
  assert.is(plan.code, 0, plan.stdout + plan.stderr);
  assert.match(plan.stdout, /\+ restore-drill latest/);
  const apply = await world.pgbk(['apply']);
  assert.is(apply.code, 0, apply.stdout + apply.stderr);
  assert.match(apply.stdout + apply.stderr, new RegExp(`drill \\S+ PASSED from backup \\S+ on ssh://postgres@127\\.0\\.0\\.1:${sshd.port}`));
  const [d] = await drills();
  assert.ok(d !== undefined);
  assert.is(d.status, 'PASSED', JSON.stringify(d));
  assert.is(d.host, hostUrl());
  assert.ok(d.backupId !== undefined && (d.restoreSeconds ?? -1) >= 0 && (d.replaySeconds ?? -1) >= 0, JSON.stringify(d));
  assert.ok((d.walBytes ?? 0) > 0, 'the WAL copied up front to the drill host is counted');
  assert.equal(d.check?.ok, true);
  assert.match(d.check?.detail ?? '', /^check sql returned true; amcheck: [1-9]\d* btree indexes in postgres intact$/);
  assert.equal(d.errors, []);
  assert.equal(await readdir(scratch), [], 'the scratch copy on the drill host is removed');
  const status = await world.pgbk(['status', 'main']);
  assert.match(status.stdout, new RegExp(`last drill    ${d.id} PASSED`));

  // scratchDir through a symbolic link that ends in the source's data directory on that host.
  const link = path.join(world.root, 'link-to-pgdata');
  await symlink(world.cluster.pgdata, link);
  await config(link);
  const before = (await readdir(world.cluster.pgdata)).sort();
  const now = new Date(Date.now() + WEEK).toISOString();
  const refused = await world.pgbk(['apply', '--now', now]);
  assert.is(refused.code, 1, refused.stdout + refused.stderr);
  const r = (await drills()).at(-1);
  assert.is(r?.status, 'FAILED', JSON.stringify(r));
  assert.match(
    r?.errors.join(';') ?? '',
    new RegExp(
      `drill.scratchDir ${link} \\(really ${world.cluster.pgdata} on ssh postgres@\\[?127\\.0\\.0\\.1\\]?:${sshd.port}\\) overlaps the server's pgdata`,
    ),
  );
  assert.equal((await readdir(world.cluster.pgdata)).sort(), before, 'nothing was created in the data directory');
  // The source cluster was never touched: it still runs and archives.
  assert.ok(isAlive(world.cluster.pid));
  await switchWal(world);
});

test.run();
