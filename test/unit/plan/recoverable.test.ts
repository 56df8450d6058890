import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backupDurationSeconds, formatPgVersion, plural, recoverableWindow, restorePoints, walPerBackup } from '../../../src/plan/recoverable.js';
import { nextScheduledBackup } from '../../../src/plan/schedule.js';
import { backup, config, SEG, seg, segs } from './fixtures.js';

test('formatPgVersion: server_version_num as people write it', () => {
  assert.is(formatPgVersion(150018), '15.18');
  assert.is(formatPgVersion(150008), '15.8');
  assert.is(formatPgVersion(160000), '16.0');
  assert.is(formatPgVersion(90624), '9.6.24');
  assert.is(formatPgVersion(0), 'unknown');
});

test('plural', () => {
  assert.is(plural(0, 'backup'), '0 backups');
  assert.is(plural(1, 'backup'), '1 backup');
  assert.is(plural(2, 'backup'), '2 backups');
  assert.is(plural(1, 'quarantined file'), '1 quarantined file');
});

test('recoverable window: end of the oldest DONE backup → newest archived segment', () => {
  const backups = [
    backup('20261120T030000Z', { status: 'FAILED' }),
    backup('20261121T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 5), endLsn: '0/5000100' }),
    backup('20261122T030000Z', { beginWal: seg(1, 8), endWal: seg(1, 8) }),
  ];
  const w = recoverableWindow(backups, { segments: segs(1, 4, 12), histories: [], backupFiles: [], newestMtime: '2026-11-22T05:00:00.000Z' });
  assert.equal(w, {
    from: { backupId: '20261121T030000Z', time: '2026-11-21T03:10:00.000Z', lsn: '0/5000100' },
    to: { wal: seg(1, 12), archivedAt: '2026-11-22T05:00:00.000Z' },
    hole: null,
    unrestorable: [],
    beyond: null,
  });
  assert.is(recoverableWindow([backup('20261121T030000Z', { status: 'WAITING_FOR_WAL' })], { segments: [], histories: [], backupFiles: [] }), undefined);
});

test('WAL per backup: from its beginWal to the next backup’s, the newest to the end of the archive', () => {
  const backups = [
    backup('20261121T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 5) }),
    backup('20261122T030000Z', { beginWal: seg(1, 8), endWal: seg(1, 8) }),
    backup('20261122T040000Z', { status: 'FAILED', beginWal: seg(1, 9) }),
  ];
  const m = walPerBackup(backups, segs(1, 3, 12), SEG);
  assert.equal(m.get('20261121T030000Z'), { segments: 4, bytes: 4 * SEG });
  assert.equal(m.get('20261122T030000Z'), { segments: 5, bytes: 5 * SEG });
  assert.is(m.get('20261122T040000Z'), undefined, 'a FAILED backup brings no WAL of its own');
});

test('duration from begin to end', () => {
  assert.is(backupDurationSeconds(backup('20261121T030000Z')), 600);
  assert.is(backupDurationSeconds(backup('20261121T030000Z', { status: 'STARTED', endTime: undefined })), undefined);
});

test('next scheduled backup: the next fire after now, and whether one is due already', () => {
  const cfg = config({ schedule: '0 3 * * *' });
  const now = new Date('2026-11-24T04:00:00Z');
  assert.equal(nextScheduledBackup(cfg, [backup('20261124T030000Z')], now), {
    time: '2026-11-25T03:00:00.000Z',
    schedule: '0 3 * * *',
    timezone: 'UTC',
    dueNow: false,
  });
  assert.is(nextScheduledBackup(cfg, [], now)?.dueNow, true);
  assert.is(nextScheduledBackup(config(), [], now), undefined);
  const berlin = nextScheduledBackup(config({ schedule: '0 3 * * *', timezone: 'Europe/Berlin' }), [], now);
  assert.is(berlin?.time, '2026-11-25T02:00:00.000Z');
});

test('recoverable window with pitrWindow and a standalone pin: continuous from the base, older backups are restore points', () => {
  const backups = [
    backup('20261119T030000Z', { beginWal: seg(1, 1), endWal: seg(1, 1), keep: 'standalone' }),
    backup('20261120T030000Z', { beginWal: seg(1, 2), endWal: seg(1, 2), endLsn: '0/2000100' }),
    backup('20261121T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 5), endLsn: '0/5000100' }),
    backup('20261122T030000Z', { beginWal: seg(1, 8), endWal: seg(1, 8) }),
  ];
  const wal = { segments: segs(1, 1, 12), histories: [], backupFiles: [], newestMtime: '2026-11-22T05:00:00.000Z' };
  // A 30-hour window from Nov 22 12:00 starts Nov 21 06:00: the Nov 21 backup is its base.
  const pitr = { pitrWindowSeconds: 30 * 3600, now: new Date('2026-11-22T12:00:00Z') };
  assert.equal(recoverableWindow(backups, wal, pitr)?.from, { backupId: '20261121T030000Z', time: '2026-11-21T03:10:00.000Z', lsn: '0/5000100' });
  assert.equal(restorePoints(backups, pitr), [
    { backupId: '20261119T030000Z', time: '2026-11-19T03:10:00.000Z', lsn: '0/2000100', why: 'standalone' },
    { backupId: '20261120T030000Z', time: '2026-11-20T03:10:00.000Z', lsn: '0/2000100', why: 'pitr-window' },
  ]);
  // Without a window only the standalone pin is outside the continuous range.
  assert.is(recoverableWindow(backups, wal)?.from.backupId, '20261120T030000Z');
  assert.equal(
    restorePoints(backups).map((p) => p.backupId),
    ['20261119T030000Z'],
  );
  // Only standalone pins: no point-in-time window at all.
  assert.is(recoverableWindow([backups[0]!], wal), undefined);
});

test.run();

test('recoverable window stops at a missing segment, and a hole after older backups moves its start', () => {
  const backups = [
    backup('20261121T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 5), endLsn: '0/5000100' }),
    backup('20261122T030000Z', { beginWal: seg(1, 10), endWal: seg(1, 10), endLsn: '0/A000100' }),
  ];
  const mtime = '2026-11-22T05:00:00.000Z';
  // Segment 7 missing: recovery from the older backup ends at 6, the newer one replays to 14.
  const holed = { segments: [...segs(1, 4, 6), ...segs(1, 8, 14)], histories: [], backupFiles: [], newestMtime: mtime };
  assert.equal(recoverableWindow(backups, holed), {
    from: { backupId: '20261122T030000Z', time: '2026-11-22T03:10:00.000Z', lsn: '0/A000100' },
    to: { wal: seg(1, 14), archivedAt: mtime },
    // ...and how far the older backup still reaches: up to the segment before the hole.
    hole: { missing: seg(1, 7), backups: ['20261121T030000Z'], reaches: [{ backupId: '20261121T030000Z', wal: seg(1, 6) }] },
    unrestorable: [],
    beyond: null,
  });
  // Segment 12 missing after the newest backup: the window ends before it, its time unknown.
  const tail = { segments: [...segs(1, 4, 11), ...segs(1, 13, 14)], histories: [], backupFiles: [], newestMtime: mtime };
  assert.equal(recoverableWindow(backups, tail)?.to, { wal: seg(1, 11), archivedAt: null });
  assert.is(recoverableWindow(backups, tail)?.hole, null);
  // ...and the WAL after that segment is named: no restore reaches it until the next backup.
  assert.equal(recoverableWindow(backups, tail)?.beyond, { missing: seg(1, 12), segments: 2 });
  // The newer backup misses a segment of its own WAL (10): it cannot be restored at all, so the
  // window is the older backup's, up to the segment before that hole.
  const own = { segments: [...segs(1, 4, 9), ...segs(1, 11, 14)], histories: [], backupFiles: [] };
  assert.equal(recoverableWindow(backups, own), {
    from: { backupId: '20261121T030000Z', time: '2026-11-21T03:10:00.000Z', lsn: '0/5000100' },
    to: { wal: seg(1, 9), archivedAt: null },
    hole: null,
    // ...and it is named, with the segment it misses.
    unrestorable: [{ backupId: '20261122T030000Z', missing: seg(1, 10) }],
    beyond: { missing: seg(1, 10), segments: 4 },
  });
  // No backup has its own WAL: nothing can be restored, and the first missing segment is named.
  const none = { segments: segs(1, 11, 14), histories: [], backupFiles: [] };
  assert.equal(recoverableWindow(backups, none), {
    from: { backupId: '20261122T030000Z', time: '2026-11-22T03:10:00.000Z', lsn: '0/A000100' },
    to: { wal: null, archivedAt: null },
    hole: {
      missing: seg(1, 10),
      backups: ['20261121T030000Z', '20261122T030000Z'],
      reaches: [
        { backupId: '20261121T030000Z', wal: null },
        { backupId: '20261122T030000Z', wal: null },
      ],
    },
    unrestorable: [],
    beyond: null,
  });
});

test('recoverable window: runs continue across a log boundary and onto a newer timeline, as a restore to latest does', () => {
  // 16 MiB segments: 256 per log, so segno 255 → 256 crosses from log 0 into log 1.
  const backups = [backup('20261121T030000Z', { beginWal: seg(1, 250), endWal: seg(1, 251), endLsn: '0/FB000100' })];
  const crossing = { segments: segs(1, 250, 260), histories: [], backupFiles: [] };
  assert.is(recoverableWindow(backups, crossing, {}, SEG)?.to.wal, seg(1, 260));
  // A promotion at segment 258: timeline 2 starts there; timeline 1 has only what came before.
  const promoted = { segments: [...segs(1, 250, 257), ...segs(2, 258, 265)], histories: ['00000002.history'], backupFiles: [] };
  assert.is(recoverableWindow(backups, promoted, {}, SEG)?.to.wal, seg(2, 265));
  // A timeline whose first segment lies before the backup began is not on its path.
  const sibling = { segments: [...segs(1, 250, 257), ...segs(3, 100, 300)], histories: [], backupFiles: [] };
  assert.is(recoverableWindow(backups, sibling, {}, SEG)?.to.wal, seg(1, 257));
  // ...nor is its WAL past the window's end stranded WAL of this history.
  assert.is(recoverableWindow(backups, sibling, {}, SEG)?.beyond, null);
  // A newer timeline that starts after a missing segment is.
  const late = { segments: [...segs(1, 250, 257), ...segs(2, 259, 262)], histories: [], backupFiles: [] };
  assert.equal(recoverableWindow(backups, late, {}, SEG)?.beyond, { missing: seg(1, 258), segments: 4 });
  // With other segment sizes the same names mean other positions: 1 GiB segments, 4 per log.
  const big = [backup('20261121T030000Z', { beginWal: '000000010000000000000003', endWal: '000000010000000000000003', endLsn: '0/F0000100' })];
  const bigWal = { segments: ['000000010000000000000003', '000000010000000100000000', '000000010000000100000001'], histories: [], backupFiles: [] };
  assert.is(recoverableWindow(big, bigWal, {}, 1024 * 1024 * 1024)?.to.wal, '000000010000000100000001');
});
