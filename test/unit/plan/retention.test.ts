import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RetentionPolicy } from '../../../src/config/resolved.js';
import { planRetention } from '../../../src/plan/retention.js';
import type { BackupRecord } from '../../../src/model/types.js';
import { backup } from './fixtures.js';

const NOW = new Date('2026-11-24T12:00:00Z');
const DAY = 86400;

/** Daily DONE backups at 03:00Z on November `from`..`to` 2026 (each ends 03:10Z). */
function daily(from: number, to: number): BackupRecord[] {
  const out: BackupRecord[] = [];
  for (let d = from; d <= to; d++) out.push(backup(`202611${String(d).padStart(2, '0')}T030000Z`));
  return out;
}

function nov(day: number): string {
  return `202611${String(day).padStart(2, '0')}T030000Z`;
}

function policy(p: Partial<RetentionPolicy>): RetentionPolicy {
  return { minRedundancy: 1, ...p };
}

interface Row {
  readonly name: string;
  readonly policy: RetentionPolicy;
  readonly backups: readonly BackupRecord[];
  readonly obsolete: readonly string[];
  readonly failed?: readonly string[];
  readonly held?: readonly string[];
  readonly reasons?: Readonly<Record<string, string>>;
  readonly warning?: RegExp;
}

const rows: readonly Row[] = [
  {
    name: 'redundancy N keeps the newest N DONE backups',
    policy: policy({ redundancy: 3 }),
    backups: daily(1, 5),
    obsolete: [nov(1), nov(2)],
    reasons: {
      [nov(1)]: 'beyond redundancy 3; 3 newer backups remain',
      [nov(2)]: 'beyond redundancy 3; 3 newer backups remain',
    },
  },
  {
    name: 'redundancy larger than the number of backups deletes nothing',
    policy: policy({ redundancy: 7 }),
    backups: daily(1, 5),
    obsolete: [],
  },
  {
    name: 'recoveryWindow keeps everything ending inside the window plus the newest one before it',
    policy: policy({ recoveryWindowSeconds: 7 * DAY }),
    backups: daily(10, 24), // window starts 2026-11-17T12:00Z: 18..24 inside, 17 is the base
    obsolete: [nov(10), nov(11), nov(12), nov(13), nov(14), nov(15), nov(16)],
    reasons: { [nov(16)]: 'outside recoveryWindow 7d; 8 newer backups remain' },
  },
  {
    name: 'recoveryWindow: all backups older than the window keep the newest one',
    policy: policy({ recoveryWindowSeconds: 3 * DAY }),
    backups: daily(1, 5),
    obsolete: [nov(1), nov(2), nov(3), nov(4)],
    reasons: { [nov(4)]: 'outside recoveryWindow 3d; 1 newer backup remains' },
  },
  {
    name: 'recoveryWindow: a backup ending exactly at the window start is inside it',
    policy: policy({ recoveryWindowSeconds: 7 * DAY + 8 * 3600 + 50 * 60 }), // now − D = 2026-11-17T03:10Z
    backups: daily(15, 18),
    obsolete: [nov(15)], // 17 ends at the boundary (inside), 16 is the base
  },
  {
    name: 'combined: a backup is kept if either rule keeps it (redundancy keeps more)',
    policy: policy({ redundancy: 10, recoveryWindowSeconds: 7 * DAY }),
    backups: daily(10, 24),
    obsolete: [nov(10), nov(11), nov(12), nov(13), nov(14)],
    reasons: { [nov(14)]: 'beyond redundancy 10 and outside recoveryWindow 7d; 10 newer backups remain' },
  },
  {
    name: 'combined: a backup is kept if either rule keeps it (window keeps more)',
    policy: policy({ redundancy: 2, recoveryWindowSeconds: 7 * DAY }),
    backups: daily(10, 24),
    obsolete: [nov(10), nov(11), nov(12), nov(13), nov(14), nov(15), nov(16)],
  },
  {
    name: 'minRedundancy holds back deletions that would leave fewer than M, oldest deleted first',
    policy: policy({ redundancy: 1, minRedundancy: 3 }),
    backups: daily(1, 5),
    obsolete: [nov(1), nov(2)],
    held: [nov(3), nov(4)],
    warning: /^retention held back: 2 obsolete backups \(20261103T030000Z, 20261104T030000Z\) kept because minRedundancy is 3 \(3 DONE backups remain\)$/,
  },
  {
    name: 'minRedundancy with an expired window: nothing below M',
    policy: policy({ recoveryWindowSeconds: DAY, minRedundancy: 2 }),
    backups: daily(1, 3),
    obsolete: [nov(1)],
    held: [nov(2)],
    warning: /minRedundancy is 2/,
  },
  {
    name: 'keep full/standalone: pinned backups are never obsolete and do not count toward N',
    policy: policy({ redundancy: 2 }),
    backups: [backup(nov(1), { keep: 'standalone' }), backup(nov(2), { keep: 'full' }), ...daily(3, 4), backup(nov(5), { keep: 'full' }), ...daily(6, 6)],
    obsolete: [nov(3)],
    reasons: { [nov(3)]: 'beyond redundancy 2; 3 newer backups remain' },
  },
  {
    name: 'a backup in use by a restore is never deleted, and the reason says why',
    policy: policy({ redundancy: 1 }),
    backups: [backup(nov(1), { inUse: [{ pid: 4242, host: 'db9', since: '2026-11-24T11:00:00Z' }] }), ...daily(2, 3)],
    obsolete: [nov(2)],
    held: [nov(1)],
  },
  {
    name: 'FAILED backups are cleaned up only once a newer DONE backup exists',
    policy: policy({ redundancy: 5 }),
    backups: [backup(nov(1), { status: 'FAILED', error: 'pg_basebackup exited 1' }), ...daily(2, 2), backup(nov(3), { status: 'FAILED' })],
    obsolete: [],
    failed: [nov(1)],
    reasons: { [nov(1)]: 'failed (pg_basebackup exited 1); newer backup 20261102T030000Z is DONE' },
  },
  {
    name: 'WAITING_FOR_WAL and STARTED backups are never deleted nor counted as DONE',
    policy: policy({ redundancy: 1 }),
    backups: [backup(nov(1), { status: 'WAITING_FOR_WAL' }), ...daily(2, 3), backup(nov(4), { status: 'STARTED' })],
    obsolete: [nov(2)],
  },
  {
    name: 'no retention rule: nothing expires',
    policy: policy({}),
    backups: daily(1, 9),
    obsolete: [],
  },
];

for (const row of rows) {
  test(row.name, () => {
    const r = planRetention(row.policy, row.backups, NOW);
    assert.equal(
      r.obsolete.map((e) => e.backup.id),
      row.obsolete,
    );
    assert.equal(
      r.failed.map((e) => e.backup.id),
      row.failed ?? [],
    );
    assert.equal(
      r.held.map((e) => e.backup.id),
      row.held ?? [],
    );
    for (const [id, reason] of Object.entries(row.reasons ?? {})) {
      const entry = [...r.obsolete, ...r.failed].find((e) => e.backup.id === id);
      assert.ok(entry, `no entry for ${id}`);
      assert.is(entry.reason, reason);
    }
    if (row.warning !== undefined) {
      assert.is(r.minRedundancyWarnings.length, 1);
      assert.match(r.minRedundancyWarnings[0] ?? '', row.warning);
    } else {
      assert.equal(r.minRedundancyWarnings, []);
    }
    const gone = new Set([...r.obsolete, ...r.failed].map((e) => e.backup.id));
    assert.equal(
      r.remaining.map((b) => b.id),
      [...row.backups]
        .map((b) => b.id)
        .filter((id) => !gone.has(id))
        .sort(),
    );
  });
}

test('in-use hold produces a warning naming the restore', () => {
  const r = planRetention(
    policy({ redundancy: 1 }),
    [backup(nov(1), { inUse: [{ pid: 4242, host: 'db9', since: '2026-11-24T11:00:00Z' }] }), ...daily(2, 2)],
    NOW,
  );
  assert.equal(r.inUseWarnings, [
    'backup 20261101T030000Z is beyond redundancy 1, but in use by a restore (pid 4242 on db9 since 2026-11-24T11:00:00Z); not deleted',
  ]);
});

test('input order does not matter', () => {
  const bs = daily(1, 8);
  const a = planRetention(policy({ redundancy: 3 }), bs, NOW);
  const b = planRetention(policy({ redundancy: 3 }), [...bs].reverse(), NOW);
  assert.equal(a, b);
});

test.run();
