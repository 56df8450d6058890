import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkArchiveCommand, checkArchiveMode, checkArchiver, checkPrivileges, checkWalLevel, type LiveFacts } from '../../../src/check/live-checks.js';
import { checkBackupAge, checkMinRedundancy, checkWalLag } from '../../../src/check/catalog-checks.js';
import { renderCheckJson, renderCheckText } from '../../../src/cli/render/check.js';
import type { ServerConfig } from '../../../src/config/resolved.js';
import type { BackupRecord, ObservedServer } from '../../../src/model/types.js';
import { backup as fixture } from '../plan/fixtures.js';

function live(over: Partial<LiveFacts['facts']> = {}, archiver: Partial<LiveFacts['archiver']> = {}): LiveFacts {
  return {
    facts: {
      systemIdentifier: '1',
      pgVersion: 150008,
      walSegmentSize: 16777216,
      timeline: 1,
      currentLsn: '0/1',
      inRecovery: false,
      walLevel: 'replica',
      archiveMode: 'on',
      archiveCommand: 'pgbk wal-push main %p',
      archiveLibrary: '',
      ...over,
    },
    role: { rolsuper: true, rolreplication: true, can_switch: true },
    archiver: {
      archived_count: '5',
      last_archived_wal: '000000010000000000000005',
      last_archived_time: new Date('2026-01-01T00:00:10Z'),
      failed_count: '0',
      last_failed_wal: null,
      last_failed_time: null,
      failing: false,
      ...archiver,
    },
  };
}

const server: ServerConfig = {
  name: 'main',
  backup: { method: 'basebackup', schedule: '0 3 * * *', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 600 },
  wal: { method: 'push', compression: 'zstd', maxLagSeconds: 300 },
  retention: { redundancy: 2, minRedundancy: 2 },
};

function backup(id: string, slot: string, status: BackupRecord['status'] = 'DONE'): BackupRecord {
  return fixture(id, { slot, status, beginTime: slot, endTime: slot });
}

function observed(backups: BackupRecord[], newestMtime?: string): ObservedServer {
  return {
    name: 'main',
    backups,
    wal: { segments: [], histories: [], backupFiles: [], ...(newestMtime ? { newestMtime } : {}) },
    incoming: [],
    quarantined: 0,
  };
}

test('archiver: failing now vs failures that were followed by a success', () => {
  const failing = checkArchiver(
    live({}, { failed_count: '3', last_failed_wal: '000000010000000000000006', last_failed_time: new Date('2026-01-01T00:00:20Z'), failing: true }),
  );
  assert.not.ok(failing.ok);
  assert.match(failing.detail, /archive_command is failing: 3 failure/);
  assert.ok(failing.hint);
  const recovered = checkArchiver(live({}, { failed_count: '3', last_failed_time: new Date('2026-01-01T00:00:05Z') }));
  assert.ok(recovered.ok);
  assert.match(recovered.detail, /3 earlier failures, recovered/);
  assert.ok(checkArchiver(live()).ok);
});

test('a standby with archive_mode on: its idle archiver and its lack of pg_switch_wal() are explained, not reported as archiving', () => {
  const standby = live({ inRecovery: true }, { archived_count: '0', last_archived_wal: null, last_archived_time: null });
  const archiving = checkArchiver(standby);
  assert.ok(archiving.ok);
  assert.is(archiving.detail, 'none on this standby (archive_mode on): the primary archives the WAL');
  assert.match(checkArchiveMode(standby).detail, /^on \(a standby archives nothing until promoted/);
  assert.match(checkPrivileges(standby).detail, /a standby: no pg_switch_wal\(\), so a backup here waits for the primary/);
  // A primary keeps the plain words, and a failing standby archiver (archive_mode always) still fails.
  assert.is(checkArchiveMode(live()).detail, 'on');
  assert.match(checkPrivileges(live()).detail, /, may run pg_switch_wal\(\)$/);
  assert.match(checkArchiver(live()).detail, /^5 segments archived/);
  const alwaysFailing = live({ inRecovery: true, archiveMode: 'always' }, { archived_count: '0', failed_count: '2', failing: true });
  assert.not.ok(checkArchiver(alwaysFailing).ok);
});

test('wal_level and archive_command', () => {
  assert.not.ok(checkWalLevel(live({ walLevel: 'minimal' })).ok);
  assert.ok(checkWalLevel(live({ walLevel: 'logical' })).ok);
  assert.not.ok(checkArchiveCommand(live({ archiveCommand: '' }), server).ok);
  assert.not.ok(checkArchiveCommand(live({ archiveCommand: '(disabled)' }), server).ok);
  // A restored copy promoted in the server's place still has restore's refusal.
  const refused = checkArchiveCommand(live({ archiveCommand: 'false' }), server);
  assert.not.ok(refused.ok);
  assert.match(refused.detail, /archive_command is 'false': WAL is not pushed to the catalog \(pgbk restore writes 'false' into a restored copy/);
  assert.match(refused.hint ?? '', /remove the archive_command and archive_library lines pgbk restore wrote/);
  // A '/bin/false' the DBA set is not pgbk's: the hint also says what to set.
  assert.match(
    checkArchiveCommand(live({ archiveCommand: '/bin/false' }), server).hint ?? '',
    /; otherwise set archive_command = 'pgbk wal-push main %p' and reload PostgreSQL$/,
  );
  const lib = checkArchiveCommand(live({ archiveLibrary: 'basic_archive' }), server);
  assert.not.ok(lib.ok);
  assert.match(lib.detail, /ignores archive_command/);
});

test('backup age: covered slot, missed slot past the grace, no backup', () => {
  const now = new Date('2026-03-10T05:00:00Z');
  assert.ok(checkBackupAge(server, observed([backup('20260310T030005Z', '2026-03-10T03:00:00.000Z')]), now).ok);
  const missed = checkBackupAge(server, observed([backup('20260309T030005Z', '2026-03-09T03:00:00.000Z')]), now);
  assert.not.ok(missed.ok);
  assert.match(missed.detail, /fired 2026-03-10T03:00:00.000Z and no backup was taken for it/);
  // Within the hour after the fire time a missing backup is not (yet) a failure.
  assert.ok(checkBackupAge(server, observed([backup('20260309T030005Z', '2026-03-09T03:00:00.000Z')]), new Date('2026-03-10T03:30:00Z')).ok);
  assert.not.ok(checkBackupAge(server, observed([]), now).ok);
});

test('min redundancy and WAL lag', () => {
  assert.not.ok(checkMinRedundancy(server, observed([backup('20260310T030005Z', '2026-03-10T03:00:00.000Z')])).ok);
  const now = new Date('2026-03-10T05:00:00Z');
  assert.ok(checkWalLag(server, observed([], '2026-03-10T04:58:00Z'), now)?.ok);
  assert.not.ok(checkWalLag(server, observed([], '2026-03-10T04:50:00Z'), now)?.ok);
  assert.not.ok(checkWalLag(server, observed([]), now)?.ok);
  assert.is(checkWalLag({ ...server, wal: { method: 'push', compression: 'zstd' } }, observed([]), now), undefined, 'no maxLag: not applicable');
});

test('rendering: one line per check, hint under failures; JSON with ok', () => {
  const reports = [
    {
      server: 'main',
      checks: [
        { name: 'wal_level', ok: true, detail: 'replica' },
        { name: 'errors/', ok: false, detail: '1 file', hint: 'look' },
      ],
    },
  ];
  assert.is(renderCheckText(reports), 'main\n  OK wal_level: replica\n  FAILED errors/: 1 file\n    hint: look\n1 check failed.\n');
  const j = JSON.parse(renderCheckJson(reports)) as { ok: boolean; formatVersion: string; command: string };
  assert.is(j.ok, false);
  assert.is(j.formatVersion, '1.0');
  assert.is(j.command, 'check');
});

test('rendering: FAILED in red and OK in green only when colour is on', () => {
  const reports = [
    {
      server: 'main',
      checks: [
        { name: 'wal_level', ok: true, detail: 'replica' },
        { name: 'errors/', ok: false, detail: '1 file', hint: 'look' },
      ],
    },
  ];
  const coloured = renderCheckText(reports, { color: true });
  assert.ok(coloured.includes('\x1b[31mFAILED\x1b[0m errors/'), coloured);
  assert.ok(coloured.includes('\x1b[32mOK\x1b[0m wal_level'), coloured);
  assert.not.ok(renderCheckText(reports, { color: false }).includes('\x1b['));
});

test.run();
