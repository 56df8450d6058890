import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createBackupDir,
  deleteBackup,
  isOwnerAlive,
  newBackupId,
  readBackup,
  readBackups,
  readBackupsWithProblems,
  writeBackupRecord,
} from '../../../src/catalog/backups.js';
import { backupDir, backupsDir, ensureServerDirs, incomingDir, serverDir } from '../../../src/catalog/layout.js';
import { PgbkError } from '../../../src/errors.js';
import type { BackupRecord } from '../../../src/model/types.js';
import { backup } from '../plan/fixtures.js';
import { makeTempDir, rejection } from './tmp-catalog.js';

const tmp = makeTempDir();
const catalog = tmp.dir;
test.before(async () => {
  await ensureServerDirs(catalog, 'main');
});
test.after(() => tmp.cleanup());

function record(id: string, status: BackupRecord['status'] = 'DONE'): BackupRecord {
  return backup(id, { status, slot: '2026-11-24T03:00:00.000Z' });
}

test('newBackupId is UTC YYYYMMDDTHHMMSSZ', () => {
  assert.is(newBackupId(new Date('2026-11-24T03:00:04.789Z')), '20261124T030004Z');
  assert.is(newBackupId(new Date('2027-01-02T23:59:59+02:00')), '20270102T215959Z');
});

test('ensureServerDirs creates the layout; incoming/ is 0770 and can be given to the database user', async () => {
  for (const d of ['backups', 'wal', 'incoming', 'errors']) assert.ok(statSync(path.join(serverDir(catalog, 'main'), d)).isDirectory(), d);
  assert.is(statSync(incomingDir(catalog, 'main')).mode & 0o777, 0o770);
  await ensureServerDirs(catalog, 'other', { incomingOwner: { uid: 101, gid: 104 } });
  const st = statSync(incomingDir(catalog, 'other'));
  assert.is(st.uid, 101);
  assert.is(st.gid, 104);
  await ensureServerDirs(catalog, 'main'); // idempotent
  assert.throws(
    () => serverDir(catalog, '../escape'),
    (e: unknown) => e instanceof PgbkError && e.code === 'CATALOG',
  );
});

test('createBackupDir claims an id once', async () => {
  assert.is(await createBackupDir(catalog, 'main', '20261124T030004Z'), 'created');
  assert.is(await createBackupDir(catalog, 'main', '20261124T030004Z'), 'exists');
  assert.throws(() => backupDir(catalog, 'main', '2026-11-24'), /invalid backup id/);
});

test('write and read records, sorted by id; problems listed apart', async () => {
  await writeBackupRecord(catalog, record('20261124T030004Z', 'STARTED'));
  await writeBackupRecord(catalog, backup('20261124T030004Z', { endWal: '000000010000000000000003' }));
  for (const id of ['20261125T030002Z', '20261123T030001Z']) {
    await createBackupDir(catalog, 'main', id);
    await writeBackupRecord(catalog, record(id));
  }
  await createBackupDir(catalog, 'main', '20261126T030000Z'); // no backup.json: crashed at start
  await createBackupDir(catalog, 'main', '20261127T030000Z');
  writeFileSync(path.join(backupDir(catalog, 'main', '20261127T030000Z'), 'backup.json'), '{"formatVersion": 1, "id": "trunc');
  mkdirSync(path.join(backupsDir(catalog, 'main'), 'not-a-backup'));

  const list = await readBackups(catalog, 'main');
  assert.equal(
    list.map((b) => b.id),
    ['20261123T030001Z', '20261124T030004Z', '20261125T030002Z'],
  );
  assert.is(list[1]?.status, 'DONE');
  assert.is(list[1]?.status === 'DONE' && list[1].endWal, '000000010000000000000003');

  const { problems } = await readBackupsWithProblems(catalog, 'main');
  assert.equal(
    problems.map((p) => p.id),
    ['20261126T030000Z', '20261127T030000Z'],
  );
  assert.match(problems[0]?.reason ?? '', /missing/);
  assert.match(problems[1]?.reason ?? '', /not valid JSON/);

  assert.is((await readBackup(catalog, 'main', '20261125T030002Z')).id, '20261125T030002Z');
  const nf = (await rejection(readBackup(catalog, 'main', '20301231T000000Z'))) as PgbkError;
  assert.is(nf.code, 'NOT_FOUND');
  const bad = (await rejection(readBackup(catalog, 'main', '20261127T030000Z'))) as PgbkError;
  assert.is(bad.code, 'CATALOG');
});

test('a record whose id does not match its directory is a problem', async () => {
  await createBackupDir(catalog, 'main', '20261128T030000Z');
  writeFileSync(path.join(backupDir(catalog, 'main', '20261128T030000Z'), 'backup.json'), JSON.stringify(record('20261101T000000Z')));
  const { problems } = await readBackupsWithProblems(catalog, 'main');
  assert.ok(problems.some((p) => p.id === '20261128T030000Z' && /directory/.test(p.reason)));
});

test('a DONE record without its end LSN: a problem and an error naming the file and the field', async () => {
  const id = '20261129T030000Z';
  await createBackupDir(catalog, 'main', id);
  const { endLsn: _gone, ...broken } = record(id) as unknown as Record<string, unknown>;
  const file = path.join(backupDir(catalog, 'main', id), 'backup.json');
  writeFileSync(file, JSON.stringify(broken));
  const { backups, problems } = await readBackupsWithProblems(catalog, 'main');
  assert.not.ok(
    backups.some((b) => b.id === id),
    'a record restore would trip over is not listed as a backup',
  );
  const p = problems.find((x) => x.id === id);
  assert.match(p?.reason ?? '', /backup\.json lacks endLsn .*status DONE/);
  assert.is(p?.path, file);
  const err = (await rejection(readBackup(catalog, 'main', id))) as PgbkError;
  assert.is(err.code, 'CATALOG');
  assert.is(err.path, file);
  assert.match(err.message, /lacks endLsn/);
  await deleteBackup(catalog, 'main', id);
});

test('deleteBackup vanishes the backup, is idempotent, and finishes interrupted deletions', async () => {
  await deleteBackup(catalog, 'main', '20261123T030001Z');
  assert.not.ok(existsSync(backupDir(catalog, 'main', '20261123T030001Z')));
  assert.not.ok((await readBackups(catalog, 'main')).some((b) => b.id === '20261123T030001Z'));
  await deleteBackup(catalog, 'main', '20261123T030001Z'); // already gone: no-op

  // a crash after the rename leaves .deleting-<id>: invisible to listings, removed by the next delete
  const leftover = path.join(backupsDir(catalog, 'main'), '.deleting-20261125T030002Z');
  mkdirSync(path.join(leftover, 'data'), { recursive: true });
  writeFileSync(path.join(leftover, 'backup.json'), JSON.stringify(record('20261125T030002Z')));
  assert.ok((await readBackups(catalog, 'main')).every((b) => !b.id.startsWith('.')));
  await deleteBackup(catalog, 'main', '20261125T030002Z');
  assert.equal(
    readdirSync(backupsDir(catalog, 'main')).filter((n) => n.startsWith('.')),
    [],
  );
  assert.not.ok((await readBackups(catalog, 'main')).some((b) => b.id === '20261125T030002Z'));
});

test('isOwnerAlive', async () => {
  const host = os.hostname();
  assert.ok(isOwnerAlive({ pid: process.pid, host }, host));
  assert.ok(isOwnerAlive({ pid: 1, host }, host), 'pid 1 exists');
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  assert.not.ok(isOwnerAlive({ pid: child.pid ?? 0, host }, host));
  assert.ok(isOwnerAlive({ pid: child.pid ?? 0, host: 'elsewhere.invalid' }, host), 'other host: presumed alive');
  assert.not.ok(isOwnerAlive({ pid: 0, host }, host));
});

test.run();
