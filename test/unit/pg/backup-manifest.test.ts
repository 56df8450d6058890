import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseBackupManifest } from '../../../src/pg/backup-manifest.js';

/** Build manifest text the way PostgreSQL does: checksum over everything before the checksum line. */
function manifest(body: object): string {
  const json = JSON.stringify(body);
  const head = `${json.slice(0, -1)},\n`;
  const sum = createHash('sha256').update(head, 'utf8').digest('hex');
  return `${head}"Manifest-Checksum": "${sum}"}\n`;
}

const base = {
  'PostgreSQL-Backup-Manifest-Version': 1,
  Files: [
    { Path: 'PG_VERSION', Size: 3, 'Last-Modified': '2026-01-01 00:00:00 GMT' },
    { Path: 'global/pg_control', Size: 8192, 'Last-Modified': '2026-01-01 00:00:00 GMT' },
  ],
  'WAL-Ranges': [{ Timeline: 1, 'Start-LSN': '0/2000028', 'End-LSN': '0/2000100' }],
};

test('parseBackupManifest: WAL range and data size', () => {
  const m = parseBackupManifest(manifest(base), 'backup_manifest');
  assert.equal(m.begin, { timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' });
  assert.equal(m.end, m.begin);
  assert.is(m.dataBytes, 8195);
  assert.is(m.fileCount, 2);
});

test('parseBackupManifest: a timeline switch during the backup (newest range listed first)', () => {
  const m = parseBackupManifest(
    manifest({
      ...base,
      'WAL-Ranges': [
        { Timeline: 2, 'Start-LSN': '0/3000000', 'End-LSN': '0/3000200' },
        { Timeline: 1, 'Start-LSN': '0/2000028', 'End-LSN': '0/3000000' },
      ],
    }),
    'backup_manifest',
  );
  assert.is(m.begin.timeline, 1);
  assert.is(m.begin.startLsn, '0/2000028');
  assert.is(m.end.timeline, 2);
  assert.is(m.end.endLsn, '0/3000200');
});

test('parseBackupManifest: a changed byte fails the checksum', () => {
  const text = manifest(base).replace('"Size":3', '"Size":4');
  assert.throws(() => parseBackupManifest(text, 'backup_manifest'), /checksum mismatch/);
});

test('parseBackupManifest: structural problems are named', () => {
  assert.throws(() => parseBackupManifest('{}', 'm'), /no Manifest-Checksum/);
  assert.throws(() => parseBackupManifest(manifest({ ...base, 'WAL-Ranges': [] }), 'm'), /WAL-Ranges is empty/);
  assert.throws(() => parseBackupManifest(manifest({ ...base, 'PostgreSQL-Backup-Manifest-Version': 2 }), 'm'), /unsupported version 2/);
  assert.throws(
    () => parseBackupManifest(manifest({ ...base, 'WAL-Ranges': [{ Timeline: 1, 'Start-LSN': '0/3000000', 'End-LSN': '0/2000000' }] }), 'm'),
    /ends \(0\/2000000\) before it starts/,
  );
  assert.throws(() => parseBackupManifest(manifest({ ...base, Files: [{ Path: 'x', Size: -1 }] }), 'm'), /malformed Files entry/);
});

test.run();
