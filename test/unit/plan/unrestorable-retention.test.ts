/**
 * Retention must not count a backup that cannot be restored. Found in session 17's disaster-recovery
 * walk-through (a real catalog, redundancy 1): the newest DONE backup lost a segment of its own WAL
 * — `pgbk status` listed it as "unrestorable", `pgbk check` failed "wal continuity" — and `pgbk
 * apply` still deleted the two older backups as "beyond redundancy 1" and pruned their WAL, leaving
 * nothing restorable at all. Fails on a50420a.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planServer } from '../../../src/plan/plan.js';
import { backup, config, observedServer, seg, segs } from './fixtures.js';

test('redundancy 1: the newest backup misses its own WAL, so the newest restorable one is kept with its WAL', () => {
  const server = observedServer({
    backups: [
      backup('20261122T030000Z', { beginWal: seg(1, 2), endWal: seg(1, 2) }),
      backup('20261123T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 4) }),
      backup('20261124T030000Z', { beginWal: seg(1, 6), endWal: seg(1, 6) }),
    ],
    // Segment 6, the newest backup's own WAL, is gone; newer WAL exists.
    wal: { segments: [...segs(1, 2, 5), ...segs(1, 7, 8)], histories: [], backupFiles: [] },
  });
  const p = planServer(config({ retention: { redundancy: 1 } }), server, new Date('2026-11-24T04:00:00Z'));
  const deleted = p.actions.filter((a) => a.kind === 'delete-backup').map((a) => a.subject);
  assert.not.ok(deleted.includes('20261123T030000Z'), `the newest restorable backup must not be deleted: ${deleted.join(', ')}`);
  const prune = p.actions.find((a) => a.kind === 'prune-wal');
  assert.not.ok(prune?.kind === 'prune-wal' && prune.segments.includes(seg(1, 4)), 'its WAL must not be pruned');
});

test('the unrestorable backup is named in a warning, not counted, and deleted only once every kept backup is newer', () => {
  const backups = [
    backup('20261120T030000Z', { beginWal: seg(1, 2), endWal: seg(1, 2) }),
    // Lost segment 4: unrestorable, between restorable backups.
    backup('20261121T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 4) }),
    backup('20261122T030000Z', { beginWal: seg(1, 6), endWal: seg(1, 6) }),
    backup('20261123T030000Z', { beginWal: seg(1, 8), endWal: seg(1, 8) }),
  ];
  const wal = { segments: [...segs(1, 2, 3), ...segs(1, 5, 9)], histories: [], backupFiles: [] };
  const now = new Date('2026-11-24T04:00:00Z');
  // redundancy 3: the three restorable ones are kept; the unrestorable one sits between them.
  const three = planServer(config({ retention: { redundancy: 3 } }), observedServer({ backups, wal }), now);
  assert.equal(
    three.actions.filter((a) => a.kind === 'delete-backup').map((a) => a.subject),
    [],
  );
  assert.equal(
    three.warnings.filter((w) => w.code === 'backup-unrestorable').map((w) => w.message),
    [
      `backup 20261121T030000Z cannot be restored: segment ${seg(1, 4)} of its own WAL is missing from the archive; retention does not count it, and deletes it only once every backup it keeps is newer (put the segment back if you have it)`,
    ],
  );
  // redundancy 2: the oldest restorable one goes ("2 newer backups remain" counts restorable ones),
  // and the unrestorable one with it, as every kept backup is newer.
  const two = planServer(config({ retention: { redundancy: 2 } }), observedServer({ backups, wal }), now);
  assert.equal(
    two.actions.filter((a) => a.kind === 'delete-backup').map((a) => `${a.subject}: ${a.reason}`),
    [
      '20261120T030000Z: beyond redundancy 2; 2 newer backups remain',
      `20261121T030000Z: cannot be restored (segment ${seg(1, 4)} of its own WAL is missing from the archive) and older than every backup retention keeps (oldest 20261122T030000Z)`,
    ],
  );
  // Without a retention rule nothing expires, an unrestorable backup neither.
  const none = planServer(config(), observedServer({ backups, wal }), now);
  assert.equal(
    none.actions.filter((a) => a.kind === 'delete-backup'),
    [],
  );
});

test.run();
