import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createBackupDir, readBackup, writeBackupRecord } from '../../../src/catalog/backups.js';
import { type DoneBackup, failedBackup } from '../../../src/model/types.js';
import { clearInUse, markInUse } from '../../../src/restore/in-use.js';
import { emptyDir, inspectTargetDir, prepareTargetDir } from '../../../src/restore/target-dir.js';
import { PgbkError } from '../../../src/errors.js';

const ID = '20260101T000000Z';
const record: DoneBackup = {
  formatVersion: 1,
  id: ID,
  server: 'main',
  slot: '2026-01-01T00:00:00Z',
  status: 'DONE',
  method: 'basebackup',
  pgVersion: 150008,
  systemIdentifier: '7312345678901234567',
  timeline: 1,
  beginLsn: '0/2000028',
  endLsn: '0/2000100',
  beginWal: '000000010000000000000002',
  endWal: '000000010000000000000002',
  beginTime: '2026-01-01T00:00:00Z',
  endTime: '2026-01-01T00:01:00Z',
  sizes: { data: 1, stored: 1 },
  checksums: {},
  compression: 'zstd',
  keep: 'none',
};

test('in-use mark: added under the lock, dead holders dropped, removed again', async () => {
  const catalog = await mkdtemp(path.join(os.tmpdir(), 'pgbk-inuse-'));
  try {
    await createBackupDir(catalog, 'main', ID);
    const dead = { pid: 999_999_99, host: os.hostname(), since: '2025-01-01T00:00:00Z' };
    const remote = { pid: 1, host: 'elsewhere', since: '2025-01-01T00:00:00Z' };
    await writeBackupRecord(catalog, { ...record, inUse: [dead, remote] });
    const mark = await markInUse(catalog, 'main', ID, 5000);
    let r = await readBackup(catalog, 'main', ID);
    assert.equal(r.status === 'DONE' && r.inUse, [remote, mark]);
    await clearInUse(catalog, 'main', ID, mark, 5000);
    r = await readBackup(catalog, 'main', ID);
    assert.equal(r.status === 'DONE' && r.inUse, [remote]);
    await writeBackupRecord(catalog, failedBackup(record, 'test'));
    try {
      await markInUse(catalog, 'main', ID, 5000);
      assert.unreachable('a FAILED backup cannot be marked');
    } catch (err) {
      assert.match((err as Error).message, /no longer DONE/);
    }
  } finally {
    await rm(catalog, { recursive: true, force: true });
  }
});

test('target dir: new is fine, non-empty refused unless --force, which empties it', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pgbk-target-'));
  try {
    const catalog = path.join(root, 'catalog');
    const fresh = await inspectTargetDir(path.join(root, 'new'), false, catalog);
    assert.is(fresh.exists, false);
    const full = path.join(root, 'full');
    await mkdir(full);
    await writeFile(path.join(full, 'PG_VERSION'), '15');
    try {
      await inspectTargetDir(full, false, catalog);
      assert.unreachable('non-empty accepted');
    } catch (err) {
      assert.instance(err, PgbkError);
      assert.match((err as Error).message, /not empty/);
    }
    const forced = await inspectTargetDir(full, true, catalog);
    const lines: string[] = [];
    await prepareTargetDir(forced, (l) => lines.push(l));
    assert.match(lines[0] ?? '', /--force: deleting the 1 existing entries/);
    assert.ok((await inspectTargetDir(full, false, catalog)).entries.length === 0);
    try {
      await inspectTargetDir(path.join(catalog, 'x'), true, catalog);
      assert.unreachable('overlap accepted');
    } catch (err) {
      assert.match((err as Error).message, /overlaps the catalog/);
    }
    await writeFile(path.join(full, 'postmaster.pid'), `${process.pid}\n`);
    try {
      await inspectTargetDir(full, true, catalog);
      assert.unreachable('running server accepted');
    } catch (err) {
      assert.match((err as Error).message, /running PostgreSQL/);
    }
    await emptyDir(full);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
