/** backup.json → BackupRecord: each status must carry its fields, and bad ones are named. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BackupRecordError, parseBackupRecord } from '../../../src/model/parse-backup-record.js';
import { type BackupRecord, failedBackup, type StartedBackup } from '../../../src/model/types.js';

const ID = '20261124T030004Z';
const EXPECT = { id: ID, server: 'main' };

const STARTED: StartedBackup = {
  formatVersion: 1,
  id: ID,
  server: 'main',
  slot: '2026-11-24T03:00:00.000Z',
  status: 'STARTED',
  method: 'basebackup',
  pgVersion: 150008,
  systemIdentifier: '7312345678901234567',
  beginTime: '2026-11-24T03:00:04.000Z',
  compression: 'zstd',
  keep: 'none',
  owner: { pid: 4242, processStart: '1:99', host: 'db1', startedAt: '2026-11-24T03:00:04.000Z' },
};

const COPY = {
  timeline: 1,
  beginLsn: '0/2000028',
  endLsn: '0/2000100',
  beginWal: '000000010000000000000002',
  endWal: '000000010000000000000002',
  endTime: '2026-11-24T03:01:00.000Z',
  sizes: { data: 30_000_000, stored: 1_234_567 },
  checksums: { 'base.tar.zst': 'a'.repeat(64), backup_manifest: 'b'.repeat(64) },
};

function withoutOwner(): Omit<StartedBackup, 'owner' | 'status'> {
  const { owner: _owner, status: _status, ...rest } = STARTED;
  return rest;
}

const DONE = { ...withoutOwner(), status: 'DONE', ...COPY };

/** The text writeBackupRecord writes for a record. */
function text(o: object): string {
  return `${JSON.stringify(o, null, 2)}\n`;
}

function without(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: _gone, ...rest } = o;
  return rest;
}

function rejects(o: object, field: string, message: RegExp): void {
  try {
    parseBackupRecord(text(o), EXPECT);
  } catch (err) {
    assert.instance(err, BackupRecordError);
    assert.is((err as BackupRecordError).field, field);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`accepted a record with a bad ${field}`);
}

test('every status reads back as the same object, key order and bytes kept', () => {
  const records: object[] = [
    STARTED,
    { ...withoutOwner(), status: 'WAITING_FOR_WAL', ...COPY, copiedBytes: 10, reusedBytes: 20, fileCount: 3, reusedFrom: '20261123T030004Z' },
    { ...DONE, inUse: [{ pid: 7, host: 'h', since: '2026-11-24T04:00:00.000Z' }] },
    failedBackup(STARTED, 'pg_basebackup exited 1', '2026-11-24T03:00:09.000Z'),
    { ...withoutOwner(), status: 'FAILED', error: 'interrupted: pid 1 on h stopped before the backup finished' },
  ];
  for (const r of records) {
    const parsed: BackupRecord = parseBackupRecord(text(r), EXPECT);
    assert.is(text(parsed), text(r));
  }
});

test('failedBackup drops the owner and keeps the key order the writers always produced', () => {
  const { owner: _owner, ...rest } = STARTED;
  const before = { ...rest, status: 'FAILED', endTime: '2026-11-24T03:00:09.000Z', error: 'boom' };
  assert.is(text(failedBackup(STARTED, 'boom', '2026-11-24T03:00:09.000Z')), text(before));
  const waiting = parseBackupRecord(text({ ...withoutOwner(), status: 'WAITING_FOR_WAL', ...COPY }), EXPECT);
  assert.is(
    text(failedBackup(waiting, 'boom', '2026-11-24T03:00:09.000Z')),
    text({ ...waiting, status: 'FAILED', endTime: '2026-11-24T03:00:09.000Z', error: 'boom' }),
  );
});

test('a status without a field it always has is refused, naming the field and the status', () => {
  for (const key of ['beginLsn', 'endLsn', 'beginWal', 'endWal', 'endTime', 'timeline', 'sizes', 'checksums']) {
    rejects(without(DONE, key), key, new RegExp(`lacks ${key} .*\\(status DONE\\)`));
    rejects(without({ ...DONE, status: 'WAITING_FOR_WAL' }, key), key, /status WAITING_FOR_WAL/);
  }
  rejects(without(STARTED as unknown as Record<string, unknown>, 'owner'), 'owner', /lacks owner.*status STARTED/);
  rejects({ ...withoutOwner(), status: 'FAILED' }, 'error', /lacks error.*status FAILED/);
  for (const key of ['pgVersion', 'systemIdentifier', 'slot', 'beginTime', 'method', 'compression', 'keep']) {
    rejects(without(DONE, key), key, new RegExp(`lacks ${key}`));
  }
});

test('a field of the wrong shape is refused, naming its path and value', () => {
  rejects({ ...DONE, endLsn: '2000100' }, 'endLsn', /endLsn = "2000100", expected an LSN/);
  rejects({ ...DONE, beginWal: '00000001000000000000002' }, 'beginWal', /24 hex/);
  rejects({ ...DONE, timeline: 0 }, 'timeline', /> 0/);
  rejects({ ...DONE, endTime: 'yesterday' }, 'endTime', /ISO time/);
  rejects({ ...DONE, sizes: { data: 1, stored: '12' } }, 'sizes.stored', /sizes\.stored = "12"/);
  rejects({ ...DONE, checksums: { 'base.tar.zst': 'xyz' } }, 'checksums.base.tar.zst', /sha256/);
  rejects(
    {
      ...DONE,
      inUse: [
        { pid: 7, host: 'h', since: '2026-11-24T04:00:00.000Z' },
        { pid: -1, host: 'h', since: '2026-11-24T04:00:00.000Z' },
      ],
    },
    'inUse[1].pid',
    /inUse\[1\]\.pid = -1/,
  );
  rejects({ ...STARTED, owner: { pid: 1, host: 'h' } }, 'owner.startedAt', /lacks owner\.startedAt/);
  rejects({ ...DONE, method: 'rsync' }, 'method', /one of basebackup, ssh/);
  rejects({ ...DONE, copiedBytes: 1.5 }, 'copiedBytes', /whole number/);
  // FAILED keeps whatever copy fields it had: each must still be well formed.
  rejects({ ...withoutOwner(), status: 'FAILED', error: 'x', endLsn: 'nope' }, 'endLsn', /status FAILED/);
  rejects({ ...DONE, status: 'FINISHED' }, 'status', /invalid status FINISHED/);
  rejects({ ...DONE, id: '20261124T030005Z' }, 'id', /its directory is 20261124T030004Z/);
});

test('not JSON, not an object', () => {
  assert.throws(() => parseBackupRecord('{"formatVersion": 1, "id": "trunc', EXPECT), /not valid JSON/);
  assert.throws(() => parseBackupRecord('[1]', EXPECT), /not an object/);
});

test.run();
