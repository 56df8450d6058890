// test-lane: light — pg_basebackup driver output; 30 s archive wait and default recovery wait
import { existsSync, readdirSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { pgbkErrorOf } from '../../support/wait.js';
import * as assert from 'uvu/assert';
import { waitForArchivedWal } from '../../../src/pg/archiver.js';
import { runBaseBackup } from '../../../src/pg/basebackup.js';
import { lsnToSegmentName, parseLsn } from '../../../src/pg/lsn.js';
import { probeServer } from '../../../src/pg/probe.js';
import { freePort } from '../../support/free-port.js';
import { chownToPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';

let cluster: TestCluster | undefined;
let archiveDir = '';
let work = '';

function pg(): TestCluster {
  if (cluster === undefined) throw new Error('cluster not started');
  return cluster;
}

test.before(async () => {
  work = await tempDir('pgbk-bb-');
  archiveDir = path.join(work, 'archive');
  await mkdir(archiveDir);
  await chownToPostgres(archiveDir);
  cluster = await startCluster({ archiveCommand: `cp %p ${archiveDir}/%f` });
  await pg().sql('CREATE TABLE t AS SELECT g AS x FROM generate_series(1, 10000) g');
});

test.after(async () => {
  await cluster?.destroy();
  if (work !== '') await rm(work, { recursive: true, force: true });
});

test('runBaseBackup: zstd tar + manifest beside existing files; LSN range from the manifest', async () => {
  const target = path.join(work, 'backup1');
  await mkdir(target);
  await writeFile(path.join(target, 'backup.json'), '{}'); // the catalog writes its record first
  const facts = await probeServer(pg().conninfo);
  const progress: string[] = [];
  const result = await runBaseBackup({
    conninfo: pg().conninfo,
    targetDir: target,
    compression: 'zstd',
    fastCheckpoint: true,
    label: 'pgbk test',
    pgVersion: facts.pgVersion,
    onProgress: (line) => progress.push(line),
  });
  assert.equal(result.files, ['backup_manifest', 'base.tar.zst']);
  assert.equal(readdirSync(target).sort(), ['backup.json', 'backup_manifest', 'base.tar.zst']);
  assert.ok(statSync(path.join(target, 'base.tar.zst')).size > 0);
  assert.is(result.timeline, 1);
  assert.is(result.endTimeline, 1);
  assert.ok(parseLsn(result.beginLsn) < parseLsn(result.endLsn), `${result.beginLsn} < ${result.endLsn}`);
  assert.ok((result.dataBytes ?? 0) > 1_000_000, String(result.dataBytes));
  assert.ok(
    progress.some((l) => l.includes('checkpoint completed')),
    progress.join('\n'),
  );
  // The copy does not wait for the archiver (BASE_BACKUP WAIT false); the client waits for it.
  const endSeg = lsnToSegmentName(parseLsn(result.endLsn) - 1n, result.timeline, facts.walSegmentSize);
  assert.ok(await waitForArchivedWal(pg().conninfo, endSeg, 30_000), `${endSeg} archived`);
  assert.ok(existsSync(path.join(archiveDir, endSeg)), `${endSeg} archived`);
});

test('runBaseBackup: gzip and none choose their extensions', async () => {
  const facts = await probeServer(pg().conninfo);
  for (const [compression, name] of [
    ['gzip', 'base.tar.gz'],
    ['none', 'base.tar'],
  ] as const) {
    const target = path.join(work, `backup-${compression}`);
    const result = await runBaseBackup({
      conninfo: pg().conninfo,
      targetDir: target,
      compression,
      fastCheckpoint: true,
      label: 'pgbk',
      pgVersion: facts.pgVersion,
    });
    assert.equal(result.files, ['backup_manifest', name]);
  }
});

test('the zstd backup restores: PostgreSQL started on it replays the archive and has the rows', async () => {
  const source = path.join(work, 'backup1');
  const restored = path.join(work, 'restored');
  await mkdir(restored);
  execFileSync('tar', ['--use-compress-program=zstd', '-xf', path.join(source, 'base.tar.zst'), '-C', restored]);
  await writeFile(path.join(restored, 'recovery.signal'), '');
  await appendFile(path.join(restored, 'postgresql.auto.conf'), `restore_command = 'cp ${archiveDir}/%f %p'\n`);
  const copy = await startClusterOn(restored, { conf: { archive_mode: 'off' } });
  try {
    await waitForQuery(copy, 'SELECT pg_is_in_recovery()', 'f');
    assert.is(await copy.sql('SELECT count(*) FROM t'), '10000');
    // Promotion at the end of the archive starts timeline 2, and the probe must see it.
    const facts = await probeServer(copy.conninfo);
    assert.is(facts.timeline, 2);
    assert.is(facts.inRecovery, false);
    assert.is(facts.systemIdentifier, (await probeServer(pg().conninfo)).systemIdentifier);
    assert.is(copy.pgdata, restored);
    assert.ok(copy.port !== pg().port);
  } finally {
    await copy.destroy();
  }
  assert.ok(existsSync(restored), 'destroy removes only the socket/log dir, not the data dir it was given');
});

test("runBaseBackup: a closed port fails with pg_basebackup's own words; no partial files", async () => {
  const port = await freePort();
  const target = path.join(work, 'refused');
  const err = await pgbkErrorOf(
    runBaseBackup({
      conninfo: `host=127.0.0.1 port=${port} user=postgres password=hunter2`,
      targetDir: target,
      compression: 'zstd',
      fastCheckpoint: true,
      label: 'x',
      pgVersion: 150000,
    }),
  );
  assert.is(err.code, 'PG');
  assert.match(err.message, /pg_basebackup failed \(exit 1\)/);
  assert.match(err.message, /Connection refused/);
  assert.not.match(err.message, /hunter2/);
  assert.equal(readdirSync(target), []);
});

test('runBaseBackup: abort kills pg_basebackup', async () => {
  const facts = await probeServer(pg().conninfo);
  const target = path.join(work, 'aborted');
  const controller = new AbortController();
  // spread checkpoint keeps pg_basebackup busy long enough to be cancelled mid-way
  const running = runBaseBackup({
    conninfo: pg().conninfo,
    targetDir: target,
    compression: 'zstd',
    fastCheckpoint: false,
    label: 'x',
    pgVersion: facts.pgVersion,
    onProgress: () => controller.abort(),
    signal: controller.signal,
  });
  const err = await pgbkErrorOf(running);
  assert.match(err.message, /cancelled/);
  assert.equal(readdirSync(target), []);
});

test.run();
