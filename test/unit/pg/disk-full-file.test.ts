import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diskFullFile } from '../../../src/pg/basebackup.js';

const STAGING = '/cat/main/backups/20261203T102317Z/.pg_basebackup.partial';

test('no disk-full message: undefined', () => {
  assert.is(diskFullFile('pg_basebackup: error: could not connect to server', STAGING), undefined);
});

test('base.tar: the file pg_basebackup names', () => {
  const stderr = `pg_basebackup: error: could not write to file "${STAGING}/base.tar": No space left on device\n`;
  assert.equal(diskFullFile(stderr, STAGING), { file: `${STAGING}/base.tar`, why: 'no space left on device' });
});

test('compressed file, close and fsync failures name their file too', () => {
  for (const verb of ['write to compressed', 'close', 'fsync', 'create']) {
    const stderr = `pg_basebackup: error: could not ${verb} file "${STAGING}/base.tar.zst": No space left on device\n`;
    assert.is(diskFullFile(stderr, STAGING)?.file, `${STAGING}/base.tar.zst`, verb);
  }
});

test('a WAL segment named relative to pg_wal.tar', () => {
  const stderr = 'pg_basebackup: error: could not write 8192 bytes to WAL file "000000010000000000000003.partial": No space left on device\n';
  assert.equal(diskFullFile(stderr, STAGING), {
    file: `${STAGING}/pg_wal.tar (000000010000000000000003.partial)`,
    why: 'no space left on device',
  });
});

test('no file named: the staging directory; quota wording kept', () => {
  const stderr = 'pg_basebackup: error: could not finish writing WAL files: Disk quota exceeded\n';
  assert.equal(diskFullFile(stderr, STAGING), { file: STAGING, why: 'disk quota exceeded' });
});

test.run();
