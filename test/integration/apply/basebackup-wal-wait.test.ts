/**
 * The basebackup method copies without PostgreSQL's wait for archive_command at backup end
 * (pg_basebackup -X stream sends BASE_BACKUP WAIT false), so the backup's own WAL may still be
 * on its way when the copy ends. Proven against PostgreSQL 15 with archiving blocked: the copy
 * finishes, the backup is WAITING_FOR_WAL with its end segment not in the archive, and it becomes
 * DONE only after archiving resumes and the segment is archived; the backup then restores.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listArchivedWal } from '../../../src/catalog/wal-archive.js';
import { makeWorld, switchWal, type World } from '../../support/pgbk.js';
import { startClusterOn, tempDir, waitForQuery } from '../../support/postgres.js';

let world: World | undefined;
const W = (): World => {
  if (world === undefined) throw new Error('setup did not run');
  return world;
};

interface ListEntry {
  readonly id: string;
  readonly status: string;
  readonly endWal: string;
}

async function listBackups(w: World): Promise<ListEntry[]> {
  const r = await w.pgbk(['list', '--json']);
  assert.is(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { backups: ListEntry[] }).backups;
}

async function archived(w: World, name: string): Promise<boolean> {
  return (await listArchivedWal(w.catalog, 'main')).segments.includes(name);
}

test.before(async () => {
  // wal-push: PostgreSQL's archive_command writes straight into the archive, so a segment is in
  // the archive exactly when the server says it archived it.
  world = await makeWorld({ archive: 'wal-push', serverYaml: 'backup: { schedule: "0 3 * * *", archiveTimeout: 3s }\nretention: { redundancy: 5 }' });
  await W().cluster.sql('CREATE TABLE t (id int primary key)');
  await W().cluster.sql('INSERT INTO t SELECT g FROM generate_series(1, 5000) g');
  await switchWal(W());
});

test.after(async () => {
  await world?.destroy();
});

test('with archiving working, the first apply takes a backup that is DONE in that same run', async () => {
  const w = W();
  const first = await w.pgbk(['apply']);
  assert.is(first.code, 0, first.stdout + first.stderr);
  const backups = await listBackups(w);
  assert.is(backups.length, 1, first.stdout);
  assert.is(backups[0]?.status, 'DONE', first.stdout + first.stderr);
  assert.ok(await archived(w, backups[0]?.endWal ?? ''));
  assert.not.match(first.stdout + first.stderr, /not archived by the server/);
});

test("archive_command = 'false' (what restore writes into a copy): plan warns, backup refuses at once and writes nothing", async () => {
  const w = W();
  const before = await listBackups(w);
  await w.cluster.sql("ALTER SYSTEM SET archive_command = 'false'");
  await w.cluster.sql('SELECT pg_reload_conf()');
  try {
    const plan = await w.pgbk(['plan']);
    assert.match(
      plan.stdout,
      /! archiving-refused: archive_command is 'false': the server archives no WAL \(pgbk restore writes 'false' into a restored copy .*\): no WAL reaches the catalog and base backups are refused until archiving works; pgbk check main says what to change/,
      plan.stdout + plan.stderr,
    );
    const backup = await w.pgbk(['backup', 'main']);
    assert.is.not(backup.code, 0, backup.stdout + backup.stderr);
    assert.match(backup.stderr, /base backup refused: archive_command is 'false'.*so the backup's WAL would never reach the catalog/);
    assert.match(backup.stderr, /hint: if this cluster now replaces the server, remove the archive_command and archive_library lines pgbk restore wrote/);
    // Refused before the copy: no record, and no wait for the archiver (archiveTimeout is 3 s
    // here, 10 minutes by default).
    assert.not.match(backup.stdout + backup.stderr, /started|not archived by the server within/);
    assert.equal(await listBackups(w), before, 'no backup record was written');
  } finally {
    await w.cluster.sql('ALTER SYSTEM RESET archive_command');
    await w.cluster.sql('SELECT pg_reload_conf()');
  }
  const plan = await w.pgbk(['plan']);
  assert.not.match(plan.stdout, /archiving-refused/);
});

test('archiving blocked: the copy ends, the backup waits for its WAL, and is DONE only once it is archived', async () => {
  const w = W();
  // Failing, not refusing by design ('false' is refused before the copy, above).
  await w.cluster.sql("ALTER SYSTEM SET archive_command = 'exit 1'");
  await w.cluster.sql('SELECT pg_reload_conf()');
  await sleep(300); // the archiver reads the new command at its next wake-up
  const started = Date.now();
  const backup = await w.pgbk(['backup', 'main']);
  const seconds = (Date.now() - started) / 1000;
  // Before: pg_basebackup -X none hung in PostgreSQL's wait until archiveTimeout killed it (and the
  // server reports that wait only after 60 s), and the backup was FAILED.
  assert.is(backup.code, 0, backup.stdout + backup.stderr);
  assert.ok(seconds < 30, `backup returned after ${seconds.toFixed(1)} s`);
  assert.match(backup.stdout + backup.stderr, /not archived by the server within 3 s \(backup\.archiveTimeout\)/);
  const waiting = (await listBackups(w)).at(-1);
  assert.ok(waiting !== undefined);
  assert.is(waiting.status, 'WAITING_FOR_WAL');
  assert.not.ok(await archived(w, waiting.endWal), `${waiting.endWal} must not be archived yet`);

  // Another apply while archiving is still blocked leaves it waiting.
  const still = await w.pgbk(['apply']);
  assert.is(still.code, 0, still.stdout + still.stderr);
  assert.is((await listBackups(w)).at(-1)?.status, 'WAITING_FOR_WAL');

  // Unblock: the archiver retries on reload and archives the backlog, the end segment included.
  await w.cluster.sql('ALTER SYSTEM RESET archive_command');
  await w.cluster.sql('SELECT pg_reload_conf()');
  const deadline = Date.now() + 60_000;
  while (!(await archived(w, waiting.endWal))) {
    if (Date.now() > deadline) throw new Error(`${waiting.endWal} was not archived within 60 s of unblocking`);
    await sleep(200);
  }
  const finished = await w.pgbk(['apply']);
  assert.is(finished.code, 0, finished.stdout + finished.stderr);
  const done = (await listBackups(w)).at(-1);
  assert.is(done?.id, waiting.id);
  assert.is(done?.status, 'DONE');
});

test('the backup that waited restores: PostgreSQL starts on it and has the rows', async () => {
  const w = W();
  await w.cluster.sql('INSERT INTO t SELECT g FROM generate_series(5001, 6000) g');
  await switchWal(w);

  const target = path.join(await tempDir('pgbk-bbwait-restore-'), 'data');
  const restored = await w.pgbk(['restore', 'main', 'latest', '--target-dir', target], { asPostgres: false });
  assert.is(restored.code, 0, restored.stdout + restored.stderr);
  const cluster = await startClusterOn(target, { conf: { archive_mode: 'off' } });
  try {
    await waitForQuery(cluster, 'SELECT pg_is_in_recovery()', 'f', 90_000);
    assert.is(await cluster.sql('SELECT count(*) FROM t'), '6000', cluster.logTail(30));
  } finally {
    await cluster.destroy();
    await rm(path.dirname(target), { recursive: true, force: true });
  }
});

test.run();
