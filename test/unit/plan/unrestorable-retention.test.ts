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

test.run();
