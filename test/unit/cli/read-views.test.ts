/** Golden files for the human output of status and list (plurals, versions, window, next backup). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listEntry, renderListText } from '../../../src/cli/list.js';
import { renderStatusText, statusEntry } from '../../../src/cli/status.js';
import { walPerBackup } from '../../../src/plan/recoverable.js';
import { backup, config, IDENTITY, SEG, seg, segs } from '../plan/fixtures.js';
import { assertGolden } from '../plan/golden.js';

const NOW = new Date('2026-11-24T04:00:00Z');
const BACKUPS = [
  backup('20261122T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 5), endLsn: '0/5000100', sizes: { data: 3 * SEG, stored: SEG } }),
  backup('20261124T030000Z', { beginWal: seg(1, 8), endWal: seg(1, 8), sizes: { data: 3 * SEG, stored: SEG } }),
];
const WAL = { segments: segs(1, 4, 12), histories: [], backupFiles: [], newestMtime: '2026-11-24T03:55:00.000Z' };

function status(): string {
  const main = statusEntry(
    { ...config({ schedule: '0 3 * * *' }), description: 'orders' },
    {
      identity: { ...IDENTITY, pgVersion: 150018 },
      backups: BACKUPS,
      wal: WAL,
      incoming: [{ name: seg(1, 13), kind: 'segment', size: SEG }],
      quarantined: 1,
      lock: undefined,
    },
    NOW,
  );
  const fresh = statusEntry(
    config({ name: 'fresh' }),
    {
      identity: undefined,
      backups: [backup('20261124T035000Z', { status: 'FAILED' })],
      wal: { segments: [], histories: [], backupFiles: [] },
      incoming: [],
      quarantined: 0,
      lock: undefined,
    },
    NOW,
  );
  return renderStatusText([main, fresh], NOW);
}

test('status: plurals, PostgreSQL 15.18, recoverable window, next backup (golden)', () => {
  const text = status();
  assert.match(text, /PostgreSQL 15\.18\)/);
  assert.not.match(text, /150018/);
  assert.match(text, /^ {2}backups {7}2 backups: 2 DONE$/m);
  assert.match(text, /^ {2}backups {7}1 backup: 1 FAILED$/m);
  assert.match(text, /^ {2}incoming {6}1 file waiting$/m);
  assert.match(text, /^ {2}errors\/ {7}1 quarantined file$/m);
  assert.match(text, /^ {2}errors\/ {7}0 quarantined files$/m);
  assertGolden('status.txt', text);
});

test('status --json carries the window, the next backup and the version text', () => {
  const e = statusEntry(
    config({ schedule: '0 3 * * *' }),
    { identity: IDENTITY, backups: BACKUPS, wal: WAL, incoming: [], quarantined: 0, lock: undefined },
    NOW,
  );
  assert.equal(e.recoverableWindow?.from, { backupId: '20261122T030000Z', time: '2026-11-22T03:10:00.000Z', lsn: '0/5000100' });
  assert.equal(e.recoverableWindow?.to, { wal: seg(1, 12), archivedAt: '2026-11-24T03:55:00.000Z' });
  assert.equal(e.nextBackup, { time: '2026-11-25T03:00:00.000Z', schedule: '0 3 * * *', timezone: 'UTC', dueNow: false });
  assert.is(e.pgVersionText, '15.8');
});

test('status text: a hole before the newest backup, and a newer backup missing its own WAL', () => {
  const entry = (segments: string[]): string =>
    renderStatusText(
      [
        statusEntry(
          config(),
          { identity: IDENTITY, backups: BACKUPS, wal: { segments, histories: [], backupFiles: [] }, incoming: [], quarantined: 0, lock: undefined },
          NOW,
        ),
      ],
      NOW,
    );
  // Segment 6 missing: the older backup stops there, the window starts at the newer one.
  const holed = entry([...segs(1, 4, 5), ...segs(1, 7, 12)]);
  assert.match(
    holed,
    new RegExp(
      `^ {2}WAL hole {6}segment ${seg(1, 6)} is missing from the archive: a restore from backup 20261122T030000Z cannot replay past it \\(20261122T030000Z reaches WAL ${seg(1, 5)}\\)$`,
      'm',
    ),
  );
  assert.not.match(holed, /unrestorable/);
  // Segment 8 (the newer backup's own) missing: the window is the older backup's, up to 7.
  const own = entry([...segs(1, 4, 7), ...segs(1, 9, 12)]);
  assert.match(own, new RegExp(`^ {2}recoverable {3}from .* \\(end of backup 20261122T030000Z\\) to WAL ${seg(1, 7)}$`, 'm'));
  assert.match(own, new RegExp(`^ {2}unrestorable {2}backup 20261124T030000Z \\(segment ${seg(1, 8)} of its own WAL is missing from the archive\\)$`, 'm'));
  // ...and the WAL archived after that segment is named as unusable until the next backup.
  assert.match(
    own,
    new RegExp(
      `^ {2}WAL hole {6}segment ${seg(1, 8)} is missing from the archive: no restore replays past it; 4 archived segments after it cannot be used until the next base backup$`,
      'm',
    ),
  );
});

test('list: duration and WAL size per backup (golden)', () => {
  const per = walPerBackup(BACKUPS, WAL.segments, SEG);
  const entries = [...BACKUPS, backup('20261124T035000Z', { status: 'STARTED', endTime: undefined })].map((b) => listEntry(b, per.get(b.id)));
  assert.is(entries[0]?.durationSeconds, 600);
  assert.is(entries[0]?.walBytes, 4 * SEG);
  assert.is(entries[1]?.walBytes, 5 * SEG);
  assert.is(entries[2]?.walBytes, null);
  assertGolden('list.txt', renderListText(entries));
});

test.run();
