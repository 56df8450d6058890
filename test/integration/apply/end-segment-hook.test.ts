/**
 * The basebackup method runs the executor's TakeHooks.endSegmentArchived as soon as the server
 * reports the backup's end segment archived, beside its own checksum pass (apply archives
 * incoming/ there: issue 13 item 2, the backup's fixed cost). Against PostgreSQL 15 archiving
 * into incoming/: the hook runs once, while the end segment sits in incoming/ and before take()
 * returns; a hook that fails surfaces from take() but leaves the backup WAITING_FOR_WAL, its data
 * intact (never FAILED for it), and the next apply archives the segment and makes it DONE.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir } from 'node:fs/promises';
import type { ExecContext } from '../../../src/apply/context.js';
import { ensureOwnIdentity } from '../../../src/apply/same-cluster.js';
import { takeBaseBackup } from '../../../src/backup/basebackup.js';
import { ensureServerDirs, readBackup } from '../../../src/catalog/index.js';
import { loadConfig } from '../../../src/config/load.js';
import { listBackups, makeWorld, switchWal, type World } from '../../support/pgbk.js';

let world: World | undefined;
const W = (): World => {
  if (world === undefined) throw new Error('setup did not run');
  return world;
};

async function execContext(w: World, log: string[]): Promise<ExecContext> {
  const desired = await loadConfig({ configPath: w.configPath, cwd: w.root, env: process.env });
  const server = desired.servers.find((s) => s.name === 'main');
  assert.ok(server !== undefined);
  await ensureServerDirs(desired.catalog, server.name);
  const now = new Date();
  const { identity, facts } = await ensureOwnIdentity(desired, server, now);
  return { catalog: desired.catalog, server, now, log: (l) => log.push(l), identity, ...(facts === undefined ? {} : { facts }) };
}

const segmentsIn = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => /^[0-9A-F]{24}$/.test(f));

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { schedule: "0 3 * * *", archiveTimeout: 30s }\nretention: { redundancy: 5 }' });
  await W().cluster.sql('CREATE TABLE t (id int primary key)');
  await W().cluster.sql('INSERT INTO t SELECT g FROM generate_series(1, 2000) g');
  await switchWal(W());
  // The first contact (identity) and the WAL so far archived, as an apply would.
  const first = await W().pgbk(['apply']);
  assert.is(first.code, 0, first.stdout + first.stderr);
});

test.after(async () => {
  await world?.destroy();
});

test('the hook runs once, with the end segment in incoming/, before take() returns', async () => {
  const w = W();
  const log: string[] = [];
  const ctx = await execContext(w, log);
  const seen: string[][] = [];
  const record = await takeBaseBackup(ctx, new Date().toISOString(), {
    endSegmentArchived: async () => {
      seen.push(await segmentsIn(w.incoming));
    },
  });
  assert.is(record.status, 'WAITING_FOR_WAL', log.join('\n'));
  assert.is(seen.length, 1, 'the hook ran once');
  assert.ok(
    record.status === 'WAITING_FOR_WAL' && seen[0]?.includes(record.endWal),
    `end segment ${record.status === 'WAITING_FOR_WAL' ? record.endWal : ''} was in incoming/: ${seen[0]?.join(', ')}`,
  );
  const done = await w.pgbk(['apply']);
  assert.is(done.code, 0, done.stdout + done.stderr);
  assert.is((await listBackups(w)).find((b) => b.id === record.id)?.status, 'DONE');
});

test('a hook that fails: take() says so, the backup stays WAITING_FOR_WAL (not FAILED), and the next apply finishes it', async () => {
  const w = W();
  const log: string[] = [];
  const ctx = await execContext(w, log);
  const before = new Set((await listBackups(w)).map((b) => b.id));
  let err: unknown;
  try {
    await takeBaseBackup(ctx, new Date().toISOString(), {
      endSegmentArchived: () => Promise.reject(new Error('incoming/ could not be archived (test)')),
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error && /could not be archived \(test\)/.test(err.message), String(err));
  const id = (await listBackups(w)).map((b) => b.id).find((i) => !before.has(i));
  assert.ok(id !== undefined, 'the backup has a record');
  const record = await readBackup(ctx.catalog, 'main', id);
  assert.is(record.status, 'WAITING_FOR_WAL', JSON.stringify(record));
  const next = await w.pgbk(['apply']);
  assert.is(next.code, 0, next.stdout + next.stderr);
  assert.is((await readBackup(ctx.catalog, 'main', id)).status, 'DONE');
});

test.run();
