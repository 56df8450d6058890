import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { failOrphanedBackups, reapRecordlessBackups } from '../../../src/apply/repair.js';
import { createBackupDir, readBackup, readBackups, writeBackupRecord } from '../../../src/catalog/backups.js';
import { backupDir, ensureServerDirs } from '../../../src/catalog/layout.js';
import type { ServerConfig } from '../../../src/config/resolved.js';
import { processIdentity } from '../../../src/lib/process-identity.js';
import { effectiveBackup } from '../../../src/observe/observe.js';
import type { BackupOwner, BackupRecord } from '../../../src/model/types.js';
import { makeTempDir } from '../catalog/tmp-catalog.js';

const tmp = makeTempDir();
const catalog = tmp.dir;
test.after(() => tmp.cleanup());

const server: ServerConfig = {
  name: 'main',
  backup: { method: 'basebackup', schedule: '0 3 * * *', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 600 },
  wal: { method: 'push', compression: 'zstd', maxLagSeconds: 300 },
  retention: { redundancy: 2, minRedundancy: 2 },
};

function started(id: string, owner: BackupOwner): BackupRecord {
  return {
    formatVersion: 1,
    id,
    server: 'main',
    slot: '2026-11-24T03:00:00.000Z',
    status: 'STARTED',
    method: 'basebackup',
    pgVersion: 150008,
    systemIdentifier: '7312345678901234567',
    beginTime: '2026-11-24T03:00:04.000Z',
    compression: 'zstd',
    keep: 'none',
    owner,
  };
}

test('a STARTED backup whose owner pid was reused (start differs) is FAILED; a live owner or an old record is not', async () => {
  await ensureServerDirs(catalog, 'main');
  const host = os.hostname();
  const me = processIdentity();
  const [boot, ticks] = (me.processStart ?? '').split(':');
  const reused = started('20261124T030001Z', { pid: process.pid, processStart: `${boot}:${Number(ticks) + 1}`, host, startedAt: '2026-11-24T03:00:04.000Z' });
  const live = started('20261124T030002Z', { ...me, host, startedAt: '2026-11-24T03:00:04.000Z' });
  const old = started('20261124T030003Z', { pid: process.pid, host, startedAt: '2026-11-24T03:00:04.000Z' });
  for (const r of [reused, live, old]) {
    await createBackupDir(catalog, 'main', r.id);
    await writeBackupRecord(catalog, r);
  }
  // What list/plan show, before anything is written:
  assert.is(effectiveBackup(reused, host).status, 'FAILED');
  assert.is(effectiveBackup(live, host).status, 'STARTED');
  assert.is(effectiveBackup(old, host).status, 'STARTED');

  const lines: string[] = [];
  const repaired = await failOrphanedBackups({ catalog, server, now: new Date(), log: (l) => lines.push(l), identity: undefined });
  assert.equal(repaired, [reused.id]);
  const after = await readBackup(catalog, 'main', reused.id);
  assert.is(after.status, 'FAILED');
  assert.not.ok('owner' in after, 'the owner is dropped');
  assert.match(after.status === 'FAILED' ? after.error : '', `pid ${process.pid} on ${host}`);
  assert.is((await readBackup(catalog, 'main', live.id)).status, 'STARTED');
  assert.is((await readBackup(catalog, 'main', old.id)).status, 'STARTED');
  assert.match(lines.join('\n'), /backup 20261124T030001Z marked FAILED/);
});

test('a backup tree without backup.json (interrupted deletion) is removed once an hour old; a fresh one and real backups stay', async () => {
  await ensureServerDirs(catalog, 'main');
  const now = Date.now();
  const setAge = (p: string, ms: number): void => utimesSync(p, new Date(now - ms), new Date(now - ms));
  // Half-deleted: backup.json gone, data left, 2 hours old.
  const stale = '20261120T030000Z';
  await createBackupDir(catalog, 'main', stale);
  const staleData = path.join(backupDir(catalog, 'main', stale), 'base.tar.zst');
  writeFileSync(staleData, Buffer.alloc(4096, 7));
  setAge(staleData, 2 * 3600_000);
  // Record-less but written 10 minutes ago: could still be in use, kept.
  const fresh = '20261121T030000Z';
  await createBackupDir(catalog, 'main', fresh);
  mkdirSync(path.join(backupDir(catalog, 'main', fresh), 'data'), { recursive: true });
  const freshFile = path.join(backupDir(catalog, 'main', fresh), 'data', 'PG_VERSION');
  writeFileSync(freshFile, '15\n');
  setAge(freshFile, 10 * 60_000);
  const before = (await readBackups(catalog, 'main')).map((b) => b.id);

  const lines: string[] = [];
  const removed = await reapRecordlessBackups({ catalog, server, now: new Date(now), log: (l) => lines.push(l), identity: undefined }, now);
  assert.equal(removed, [stale]);
  assert.not.ok(existsSync(backupDir(catalog, 'main', stale)));
  assert.ok(existsSync(freshFile));
  assert.equal(
    (await readBackups(catalog, 'main')).map((b) => b.id),
    before,
    'backups with a record are untouched',
  );
  assert.match(lines.join('\n'), new RegExp(`removed .*${stale}, a backup tree without backup.json .*4\\.0 KiB, 2\\.0 h old`));
});

test.run();
