import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planWal, walHolders, type WalInput } from '../../../src/plan/wal.js';
import type { BackupRecord } from '../../../src/model/types.js';
import { firstMissing, countInRange, positionOf } from '../../../src/plan/wal-index.js';
import { parseSegmentName, segmentNumber } from '../../../src/pg/wal-name.js';
import { PgbkError } from '../../../src/errors.js';
import { backup, SEG, seg, segs } from './fixtures.js';

function withWal(id: string, tli: number, from: number, to: number, o: Partial<BackupRecord> = {}): BackupRecord {
  return backup(id, { timeline: tli, beginWal: seg(tli, from), endWal: seg(tli, to), ...o });
}

function input(o: Partial<WalInput> & { backups: readonly BackupRecord[] }): WalInput {
  return {
    segSize: SEG,
    archived: { segments: [], histories: [], backupFiles: [] },
    incomingSegments: [],
    remaining: o.remaining ?? o.backups,
    ...o,
  };
}

function archive(segments: readonly string[], extra: { histories?: string[]; backupFiles?: string[]; partials?: string[] } = {}) {
  return { segments, histories: extra.histories ?? [], backupFiles: extra.backupFiles ?? [], partials: extra.partials ?? [] };
}

const B1 = '20261120T030000Z';
const B2 = '20261121T030000Z';
const B3 = '20261122T030000Z';

// --- finish-backup -------------------------------------------------------------------------------

const finishRows: readonly {
  name: string;
  archived: readonly string[];
  incoming?: readonly string[];
  finish: boolean;
  reason?: string;
}[] = [
  {
    name: 'finish when every segment begin..end is archived',
    archived: segs(1, 8, 12),
    finish: true,
    reason: `WAL ${seg(1, 10)}…${seg(1, 12)} complete (3 segments)`,
  },
  {
    name: 'finish counting segments this plan archives from incoming/',
    archived: segs(1, 8, 11),
    incoming: [seg(1, 12)],
    finish: true,
    reason: `WAL ${seg(1, 10)}…${seg(1, 12)} complete (3 segments, 1 arriving from incoming/ in this plan)`,
  },
  { name: 'not when the end segment is missing', archived: segs(1, 8, 11), finish: false },
  { name: 'not when a middle segment is missing', archived: [...segs(1, 8, 10), ...segs(1, 12, 14)], finish: false },
  { name: 'not when the segments are on another timeline', archived: segs(2, 8, 14), finish: false },
];

for (const row of finishRows) {
  test(`finish-backup: ${row.name}`, () => {
    const waiting = withWal(B3, 1, 10, 12, { status: 'WAITING_FOR_WAL' });
    const d = planWal(input({ backups: [waiting], archived: archive(row.archived), incomingSegments: row.incoming ?? [] }));
    assert.equal(
      d.finish.map((f) => f.backup.id),
      row.finish ? [B3] : [],
    );
    if (row.reason !== undefined) assert.is(d.finish[0]?.reason, row.reason);
  });
}

test('finish-backup: a one-segment backup across a log boundary (…FF → next log)', () => {
  const waiting = withWal(B3, 1, 0xff, 0x100, { status: 'WAITING_FOR_WAL' });
  assert.is(seg(1, 0xff), '0000000100000000000000FF');
  assert.is(seg(1, 0x100), '000000010000000100000000');
  const d = planWal(input({ backups: [waiting], archived: archive(segs(1, 0xfe, 0x100)) }));
  assert.is(d.finish.length, 1);
});

test('finish-backup: DONE and FAILED backups are not finished again', () => {
  const d = planWal(
    input({
      backups: [withWal(B1, 1, 1, 2), withWal(B2, 1, 3, 4, { status: 'FAILED' })],
      archived: archive(segs(1, 1, 4)),
    }),
  );
  assert.equal(d.finish, []);
});

// --- wal-gap -------------------------------------------------------------------------------------

test('wal-gap: missing segments after the oldest retained backup are reported with the first and count', () => {
  const archived = [...segs(1, 8, 13), ...segs(1, 16, 20)];
  const d = planWal(input({ backups: [withWal(B1, 1, 10, 10)], archived: archive(archived) }));
  assert.equal(d.gapWarnings, ['timeline 1: 2 WAL segments missing from the archive, first 00000001000000000000000E; recovery cannot replay past it']);
});

test('wal-gap: holes before the oldest retained backup do not matter', () => {
  const archived = [...segs(1, 1, 3), ...segs(1, 10, 20)];
  const d = planWal(input({ backups: [withWal(B1, 1, 10, 11)], archived: archive(archived) }));
  assert.equal(d.gapWarnings, []);
});

test('wal-gap: a DONE backup whose own WAL is missing is a gap', () => {
  const d = planWal(input({ backups: [withWal(B1, 1, 10, 11)], archived: archive(segs(1, 5, 9)) }));
  assert.equal(d.gapWarnings, ['timeline 1: 2 WAL segments missing from the archive, first 00000001000000000000000A; recovery cannot replay past it']);
});

test('wal-gap: segments arriving from incoming/ close the gap', () => {
  const archived = [...segs(1, 8, 13), ...segs(1, 16, 20)];
  const d = planWal(input({ backups: [withWal(B1, 1, 10, 10)], archived: archive(archived), incomingSegments: segs(1, 14, 15) }));
  assert.equal(d.gapWarnings, []);
});

test('wal-gap: checked per timeline; a new timeline starts at its first segment', () => {
  const archived = [...segs(1, 10, 20), ...segs(2, 20, 24), ...segs(2, 27, 30)];
  const d = planWal(input({ backups: [withWal(B1, 1, 10, 10)], archived: archive(archived) }));
  assert.equal(d.gapWarnings, ['timeline 2: 2 WAL segments missing from the archive, first 000000020000000000000019; recovery cannot replay past it']);
});

test('wal-gap: overlapping ranges (a standalone inside the continuous range) are counted once', () => {
  const standalone = withWal(B2, 1, 12, 20, { keep: 'standalone' });
  const normal = withWal(B1, 1, 10, 10);
  const archived = [...segs(1, 10, 14), ...segs(1, 16, 22), ...segs(1, 24, 25)];
  const d = planWal(input({ backups: [normal, standalone], archived: archive(archived) }));
  assert.equal(d.gapWarnings, ['timeline 1: 2 WAL segments missing from the archive, first 00000001000000000000000F; recovery cannot replay past it']);
});

test('wal-gap: a retained backup on an older timeline than the base is checked on its own timeline', () => {
  // Base on timeline 2 at segment 11; a later backup on timeline 1 at 20 (a branch that went on).
  const archived = [...segs(1, 11, 19), ...segs(1, 20, 21), ...segs(1, 23, 23), ...segs(2, 11, 15)];
  const d = planWal(input({ backups: [withWal(B1, 2, 11, 11), withWal(B2, 1, 20, 20)], archived: archive(archived) }));
  assert.equal(d.gapWarnings, ['timeline 1: 1 WAL segment missing from the archive, first 000000010000000000000016; recovery cannot replay past it']);
});

test('wal-gap: a deleted backup no longer needs its WAL', () => {
  const old = withWal(B1, 1, 2, 2);
  const kept = withWal(B2, 1, 10, 10);
  const archived = [...segs(1, 2, 3), ...segs(1, 10, 12)];
  const d = planWal(input({ backups: [old, kept], remaining: [kept], archived: archive(archived) }));
  assert.equal(d.gapWarnings, []);
});

test('wal-index: firstMissing and countInRange', () => {
  const list = [1, 2, 3, 5, 6, 9];
  assert.is(firstMissing(list, 1, 3), undefined);
  assert.is(firstMissing(list, 1, 9), 4);
  assert.is(firstMissing(list, 5, 9), 7);
  assert.is(firstMissing(list, 0, 2), 0);
  assert.is(firstMissing(list, 10, 12), 10);
  assert.is(countInRange(list, 2, 6), 4);
  assert.is(countInRange(list, 7, 8), 0);
});

test('wal-index: positionOf agrees with pg/wal-name for every segment size and refuses bad names', () => {
  const names = [
    '000000010000000000000001',
    '0000000100000000000000FF',
    '000000010000000100000000',
    '00000002000000AB000000FE',
    'FFFFFFFFFFFFFFFF000000FF',
    '000000010000000A00000031.00000028.backup',
    '000000030000000000000FFF',
  ];
  for (const size of [1 << 20, 16 << 20, 64 << 20, 1 << 30]) {
    for (const name of names) {
      let expected: { timeline: number; segno: number } | undefined;
      try {
        expected = { timeline: parseSegmentName(name.slice(0, 24))?.timeline ?? -1, segno: segmentNumber(name, size) };
      } catch {
        expected = undefined;
      }
      if (expected === undefined)
        assert.throws(
          () => positionOf(name, size),
          (e: unknown) => e instanceof PgbkError,
        );
      else assert.equal(positionOf(name, size), expected, `${name} @ ${size}`);
    }
  }
  for (const bad of ['000000000000000000000001', '00000001000000000000000g', '0000000100000000', 'xyz']) {
    assert.throws(
      () => positionOf(bad, SEG),
      (e: unknown) => e instanceof PgbkError,
      bad,
    );
  }
  assert.throws(
    () => positionOf('000000010000000000000001', 1000),
    (e: unknown) => e instanceof PgbkError,
  );
});

// --- prune-wal -----------------------------------------------------------------------------------

test('prune: everything before the oldest retained backup begin goes', () => {
  const d = planWal(input({ backups: [withWal(B1, 1, 10, 10), withWal(B2, 1, 20, 21)], archived: archive(segs(1, 1, 25)) }));
  assert.ok(d.prune);
  assert.equal(d.prune.segments, segs(1, 1, 9));
  assert.is(d.prune.bytes, 9 * SEG);
  assert.is(d.prune.subject, '9 segments (144 MiB) before 00000001000000000000000A');
  assert.is(d.prune.reason, `not needed by any retained backup: the oldest, ${B1}, begins at 00000001000000000000000A`);
});

test('prune: computed from the backups that remain after deletions', () => {
  const old = withWal(B1, 1, 10, 10);
  const kept = withWal(B2, 1, 20, 21);
  const d = planWal(input({ backups: [old, kept], remaining: [kept], archived: archive(segs(1, 1, 25)) }));
  assert.equal(d.prune?.segments, segs(1, 1, 19));
});

test('prune: nothing without a retained DONE backup (none, only FAILED, only WAITING)', () => {
  const cases: readonly (readonly BackupRecord[])[] = [
    [],
    [withWal(B1, 1, 10, 10, { status: 'FAILED' })],
    [withWal(B1, 1, 10, 10, { status: 'WAITING_FOR_WAL' })],
    [withWal(B1, 1, 10, 10, { keep: 'standalone' })],
  ];
  for (const backups of cases) {
    assert.is(planWal(input({ backups, archived: archive(segs(1, 1, 25)) })).prune, undefined);
  }
});

test('prune: nothing when the archive already starts at the boundary', () => {
  const d = planWal(input({ backups: [withWal(B1, 1, 10, 10)], archived: archive(segs(1, 10, 25)) }));
  assert.is(d.prune, undefined);
});

test('prune: an in-progress backup holds WAL from its begin', () => {
  const d = planWal(
    input({
      backups: [withWal(B1, 1, 8, 9, { status: 'WAITING_FOR_WAL' }), withWal(B2, 1, 20, 20)],
      archived: archive(segs(1, 1, 25)),
    }),
  );
  assert.equal(d.prune?.segments, segs(1, 1, 7));
});

test('prune: a STARTED backup whose begin is not known yet blocks pruning', () => {
  const d = planWal(
    input({
      backups: [withWal(B1, 1, 10, 10), backup(B2, { status: 'STARTED' })],
      archived: archive(segs(1, 1, 25)),
    }),
  );
  assert.is(d.prune, undefined);
});

test('prune: per timeline — older timeline segments from the boundary on stay', () => {
  // Promotion to timeline 2 inside segment 12: timeline 1 has 1..12, timeline 2 continues from 12.
  const archived = [...segs(1, 1, 12), ...segs(2, 12, 20)];
  const d = planWal(
    input({
      backups: [withWal(B1, 2, 14, 14)],
      archived: archive(archived, { histories: ['00000002.history'] }),
    }),
  );
  assert.equal(d.prune?.segments, [...segs(1, 1, 12), ...segs(2, 12, 13)]);
  const d2 = planWal(input({ backups: [withWal(B1, 2, 11, 11)], archived: archive(archived, { histories: ['00000002.history'] }) }));
  // Timeline 1's segments 11 and 12 are at or after the boundary: needed.
  assert.equal(d2.prune?.segments, segs(1, 1, 10));
});

test('prune: .history files are never listed; .backup files before the boundary go with the segments', () => {
  const backupFiles = [`${seg(1, 3)}.00000028.backup`, `${seg(1, 10)}.00000060.backup`];
  const d = planWal(
    input({
      backups: [withWal(B1, 1, 10, 10)],
      archived: archive(segs(1, 1, 12), { histories: ['00000002.history'], backupFiles }),
    }),
  );
  assert.ok(d.prune);
  assert.ok(d.prune.segments.every((s) => !s.endsWith('.history')));
  assert.equal(d.prune.backupFiles, [`${seg(1, 3)}.00000028.backup`]);
});

test('prune: .partial segments go with the segments before the boundary, and stay from it on', () => {
  const partials = [`${seg(1, 4)}.partial`, `${seg(1, 10)}.partial`, `${seg(1, 11)}.partial`];
  const d = planWal(
    input({
      backups: [withWal(B1, 2, 10, 10)],
      archived: archive([...segs(1, 1, 9), ...segs(2, 10, 12)], { histories: ['00000002.history'], partials }),
    }),
  );
  assert.ok(d.prune);
  assert.equal(d.prune.segments, segs(1, 1, 9));
  assert.equal(d.prune.backupFiles, [`${seg(1, 4)}.partial`]);
});

test('prune: a standalone pin keeps only its own range; a full pin holds everything after it', () => {
  const standalone = withWal(B1, 1, 5, 6, { keep: 'standalone' });
  const normal = withWal(B3, 1, 20, 20);
  const d = planWal(input({ backups: [standalone, normal], archived: archive(segs(1, 1, 25)) }));
  assert.equal(d.prune?.segments, [...segs(1, 1, 4), ...segs(1, 7, 19)]);
  assert.match(d.prune?.reason ?? '', /1 standalone backup keep only their own WAL range/);

  const full = withWal(B1, 1, 5, 6, { keep: 'full' });
  const d2 = planWal(input({ backups: [full, normal], archived: archive(segs(1, 1, 25)) }));
  assert.equal(d2.prune?.segments, segs(1, 1, 4));
});

test('prune: gaps in a standalone range are reported, gaps between islands are not', () => {
  const standalone = withWal(B1, 1, 5, 7, { keep: 'standalone' });
  const normal = withWal(B3, 1, 20, 20);
  const archived = [...segs(1, 5, 5), ...segs(1, 7, 7), ...segs(1, 20, 22)];
  const d = planWal(input({ backups: [standalone, normal], archived: archive(archived) }));
  assert.equal(d.gapWarnings, ['timeline 1: 1 WAL segment missing from the archive, first 000000010000000000000006; recovery cannot replay past it']);
});

// --- pitrWindow (issue 14) ------------------------------------------------------------------------

const B4 = '20261123T030000Z';
// Backups end 10 minutes after their id (fixtures). Window 36h back from Nov 23 12:00 starts
// Nov 22 00:00: B3 (Nov 22 03:10) is inside, B2 (Nov 21 03:10) is the newest that ended before it.
const NOW = new Date('2026-11-23T12:00:00Z');
const WINDOW_36H = 36 * 3600;

test('pitrWindow: backups older than the window base keep only their own WAL; the base and newer hold everything after', () => {
  const b1 = withWal(B1, 1, 5, 6);
  const b2 = withWal(B2, 1, 10, 11);
  const b3 = withWal(B3, 1, 15, 15);
  const b4 = withWal(B4, 1, 20, 20);
  const backups = [b1, b2, b3, b4];
  const d = planWal(input({ backups, archived: archive(segs(1, 1, 25)), pitrWindowSeconds: WINDOW_36H, now: NOW }));
  assert.equal(d.prune?.segments, [...segs(1, 1, 4), ...segs(1, 7, 9)], 'b1 keeps 5..6, everything from the base b2 on stays');
  assert.match(d.prune?.reason ?? '', /outside the PITR window \(1d 12h|outside the PITR window \(36h/);
  assert.match(d.prune?.reason ?? '', new RegExp(`it starts at ${B2}.*1 older backup keep only the WAL they need to be consistent`));
  assert.equal(d.gapWarnings, []);

  // Without the window the same catalog prunes only before b1.
  const plain = planWal(input({ backups, archived: archive(segs(1, 1, 25)) }));
  assert.equal(plain.prune?.segments, segs(1, 1, 4));

  const h = walHolders(backups, WINDOW_36H, NOW);
  assert.equal(h.pitrBase?.id, B2);
  assert.equal([...h.consistentOnly], [B1]);
});

test('pitrWindow: a window longer than the backups prunes like no window; a full pin overrides it', () => {
  const backups = [withWal(B1, 1, 5, 6), withWal(B2, 1, 10, 11), withWal(B4, 1, 20, 20)];
  const long = planWal(input({ backups, archived: archive(segs(1, 1, 25)), pitrWindowSeconds: 30 * 86400, now: NOW }));
  assert.equal(long.prune?.segments, segs(1, 1, 4));
  assert.equal(walHolders(backups, 30 * 86400, NOW).pitrBase, undefined);

  const pinned = [withWal(B1, 1, 5, 6, { keep: 'full' }), withWal(B2, 1, 10, 11), withWal(B4, 1, 20, 20)];
  const d = planWal(input({ backups: pinned, archived: archive(segs(1, 1, 25)), pitrWindowSeconds: 3600, now: NOW }));
  assert.equal(d.prune?.segments, segs(1, 1, 4), 'the full pin keeps all WAL after it');
});

test('pitrWindow: an in-progress backup still holds WAL from its begin; gaps count only from the base on', () => {
  const b1 = withWal(B1, 1, 5, 6);
  const b2 = withWal(B2, 1, 10, 11);
  const b4 = withWal(B4, 1, 20, 20);
  // A hole between b1 and b2 (segment 8) no longer matters for the window; one after b2 does.
  const archived = [...segs(1, 5, 7), ...segs(1, 9, 12), ...segs(1, 14, 22)];
  const d = planWal(input({ backups: [b1, b2, b4], archived: archive(archived), pitrWindowSeconds: WINDOW_36H, now: NOW }));
  assert.equal(d.gapWarnings, ['timeline 1: 1 WAL segment missing from the archive, first 00000001000000000000000D; recovery cannot replay past it']);
  assert.equal(d.prune?.segments, [...segs(1, 7, 7), ...segs(1, 9, 9)]);
  const plain = planWal(input({ backups: [b1, b2, b4], archived: archive(archived) }));
  assert.match(plain.gapWarnings.join('\n'), /2 WAL segments missing.*first 000000010000000000000008/, 'without the window the hole at 8 counts');

  const started = backup('20261101T030000Z', { status: 'WAITING_FOR_WAL', beginWal: seg(1, 3), endWal: seg(1, 4) });
  const d2 = planWal(input({ backups: [started, b1, b2, b4], archived: archive(archived), pitrWindowSeconds: WINDOW_36H, now: NOW }));
  assert.equal(d2.prune, undefined, 'the WAITING backup at segment 3 holds everything after it');
});

test.run();
