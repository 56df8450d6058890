import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import { type DoneBackup, type FailedBackup, failedBackup } from '../../../src/model/types.js';
import { chooseBackup, type ChooseInput } from '../../../src/restore/choose-backup.js';
import { parseTargetTime, type RecoveryTarget } from '../../../src/restore/target.js';
import type { HistoryEntry } from '../../../src/restore/timeline-history.js';
import { parseLsn } from '../../../src/pg/lsn.js';

const SEG = 16 * 1024 * 1024;

function backup(id: string, begin: string, end: string, endTime: string, extra: Partial<DoneBackup> = {}): DoneBackup {
  const beginSeg = parseLsn(begin) / BigInt(SEG);
  const endSeg = (parseLsn(end) - 1n) / BigInt(SEG);
  const tli = extra.timeline ?? 1;
  const name = (s: bigint): string => `${tli.toString(16).padStart(8, '0').toUpperCase()}00000000${s.toString(16).toUpperCase().padStart(8, '0')}`;
  return {
    formatVersion: 1,
    id,
    server: 'main',
    slot: endTime,
    status: 'DONE',
    method: 'basebackup',
    pgVersion: 150008,
    systemIdentifier: '7312345678901234567',
    timeline: tli,
    beginLsn: begin,
    endLsn: end,
    beginWal: name(beginSeg),
    endWal: name(endSeg),
    beginTime: endTime,
    endTime,
    sizes: { data: SEG, stored: SEG },
    checksums: {},
    compression: 'zstd',
    keep: 'none',
    ...extra,
  };
}

const A = backup('20260101T000000Z', '0/2000028', '0/2000100', '2026-01-01T00:00:10.000Z');
const B = backup('20260102T000000Z', '0/5000028', '0/5000138', '2026-01-02T00:00:10.000Z');

function segs(tli: number, from: number, to: number, skip: readonly number[] = []): string[] {
  const out: string[] = [];
  for (let s = from; s <= to; s++) {
    if (!skip.includes(s)) out.push(`${tli.toString(16).padStart(8, '0')}00000000${s.toString(16).toUpperCase().padStart(8, '0')}`);
  }
  return out;
}

const NOW = parseTargetTime('2026-01-05T00:00:00Z');

function input(target: RecoveryTarget, over: Partial<ChooseInput> = {}): ChooseInput {
  return {
    server: 'main',
    backups: [B, A],
    requested: undefined,
    target,
    timeline: { kind: 'latest' },
    segments: segs(1, 2, 9),
    histories: new Map(),
    segSize: SEG,
    nowMicros: NOW,
    ...over,
  };
}

const time = (t: string): RecoveryTarget => ({ kind: 'time', text: t, micros: parseTargetTime(t) });
const lsn = (l: string): RecoveryTarget => ({ kind: 'lsn', lsn: parseLsn(l) });

function throws(fn: () => unknown, re: RegExp, code?: string): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.match((err as Error).message, re);
    if (code !== undefined) assert.is((err as PgbkError).code, code);
    return;
  }
  assert.unreachable(`expected an error matching ${re}`);
}

const ok: Array<[string, ChooseInput, string, string, string]> = [
  ['latest: newest backup, all WAL', input({ kind: 'latest' }), B.id, '000000010000000000000005', '000000010000000000000009'],
  ['time between backups → older', input(time('2026-01-01T12:00:00Z')), A.id, '000000010000000000000002', '000000010000000000000009'],
  ['time equal to end → that backup', input(time('2026-01-02T00:00:10Z')), B.id, '000000010000000000000005', '000000010000000000000009'],
  ['time with offset', input(time('2026-01-02 01:00:10.5+01:00')), B.id, '000000010000000000000005', '000000010000000000000009'],
  ['time 1 µs before B end → A', input(time('2026-01-02T00:00:09.999999Z')), A.id, '000000010000000000000002', '000000010000000000000009'],
  ['lsn between → older, WAL to target', input(lsn('0/4000000')), A.id, '000000010000000000000002', '000000010000000000000004'],
  ['lsn = end of B → B', input(lsn('0/5000138')), B.id, '000000010000000000000005', '000000010000000000000005'],
  ['xid → newest', input({ kind: 'xid', xid: '1234' }), B.id, '000000010000000000000005', '000000010000000000000009'],
  ['name → newest', input({ kind: 'name', name: 'before_drop' }), B.id, '000000010000000000000005', '000000010000000000000009'],
  ['immediate → newest, WAL to its end', input({ kind: 'immediate' }), B.id, '000000010000000000000005', '000000010000000000000005'],
  ['explicit id', input({ kind: 'latest' }, { requested: A.id }), A.id, '000000010000000000000002', '000000010000000000000009'],
  ['"latest" id = auto', input({ kind: 'immediate' }, { requested: 'latest' }), B.id, '000000010000000000000005', '000000010000000000000005'],
  [
    'failed newer backups are ignored',
    input({ kind: 'latest' }, { backups: [A, B, failedBackup(backup('20260103T000000Z', '0/8000028', '0/8000100', '2026-01-03T00:00:00Z'), 'test')] }),
    B.id,
    '000000010000000000000005',
    '000000010000000000000009',
  ],
];

for (const [name, inp, id, from, to] of ok) {
  test(`choose: ${name}`, () => {
    const c = chooseBackup(inp);
    assert.is(c.backup.id, id);
    assert.is(c.walFrom, from);
    assert.is(c.walTo, to);
    assert.ok(c.reason.length > 10);
  });
}

test('choose: reasons say why', () => {
  assert.match(chooseBackup(input(time('2026-01-01T12:00:00Z'))).reason, /ended before the target/);
  assert.match(chooseBackup(input(lsn('0/4000000'))).reason, /end LSN 0\/2000100/);
  assert.match(chooseBackup(input({ kind: 'latest' }, { requested: A.id })).reason, /requested/);
});

test('choose: target before the oldest backup is refused', () => {
  throws(() => chooseBackup(input(time('2026-01-01T00:00:09Z'))), /before the end of the oldest backup 20260101T000000Z/);
  throws(() => chooseBackup(input(lsn('0/2000000'))), /before the end of the oldest backup/);
});

test('choose: time in the future is refused', () => {
  throws(() => chooseBackup(input(time('2026-01-06T00:00:00Z'))), /in the future/);
});

test('choose: LSN after the last archived segment is refused', () => {
  throws(() => chooseBackup(input(lsn('0/A000000'))), /after the last archived WAL.*000000010000000000000009/);
});

test('choose: a missing segment before the LSN target is reported by name', () => {
  throws(() => chooseBackup(input(lsn('0/4000000'), { segments: segs(1, 2, 9, [3]) })), /000000010000000000000003 is missing/, 'WAL');
});

test('choose: latest with a hole and newer WAL behind it is refused', () => {
  throws(() => chooseBackup(input({ kind: 'latest' }, { segments: segs(1, 2, 9, [7]) })), /000000010000000000000007 is missing/);
});

/** The hint of the error `fn` throws. */
function hintOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as PgbkError).hint ?? '';
  }
  return assert.unreachable('expected an error') as never;
}

test('choose: the gap hint names what works past the gap: a newer backup starting after it, else a new backup', () => {
  // Segment 7 missing after the newest backup (B, 5…): nothing restores past it until a new backup.
  assert.match(
    hintOf(() => chooseBackup(input({ kind: 'latest' }, { segments: segs(1, 2, 9, [7]) }))),
    /take one now \(pgbk backup main\)$/,
  );
  // Segment 3 missing, A asked for by id: B starts after the gap (session 17's DR walk-through F12).
  const hint = hintOf(() => chooseBackup(input({ kind: 'latest' }, { segments: segs(1, 2, 9, [3]), requested: A.id })));
  assert.match(hint, new RegExp(`backup ${B.id} starts after the gap and restores to later points \\(pgbk restore main ${B.id}, or no backup id`));
});

test('choose: latest stops quietly at the true end of the archive', () => {
  const c = chooseBackup(input({ kind: 'latest' }, { segments: segs(1, 2, 7) }));
  assert.is(c.walTo, '000000010000000000000007');
  assert.equal(c.warnings, []);
});

test('choose: a time target in a gap (newer WAL behind it) carries the refusal, with the nearest reachable points, for the WAL scan to decide', () => {
  // A's own WAL (segment 2) is there, 3 and 4 are gone (pruned outside a PITR window), B from 5 on.
  const c = chooseBackup(input(time('2026-01-01T12:00:00Z'), { segments: segs(1, 2, 9, [3, 4]) }));
  assert.is(c.backup.id, A.id);
  assert.is(c.walTo, '000000010000000000000002', 'recovery can read up to the hole');
  assert.is(c.beforeGap?.missing, '000000010000000000000003');
  const err = c.beforeGap?.refusal;
  assert.instance(err, PgbkError);
  assert.match(
    err?.message ?? '',
    /target time 2026-01-01T12:00:00Z lies in a gap of the WAL archive: segment 000000010000000000000003 is missing .*no commit after the target lies before it/,
  );
  assert.match(err?.hint ?? '', /up to LSN 0\/3000000 from backup 20260101T000000Z .*--target-immediate/);
  assert.match(err?.hint ?? '', /from the end of backup 20260102T000000Z \(2026-01-02T00:00:10.000Z, LSN 0\/5000138\) on/);
  // The newest backup has no next one to offer.
  const late = chooseBackup(input(time('2026-01-04T00:00:00Z'), { segments: segs(1, 2, 9, [7]) })).beforeGap?.refusal;
  assert.match(late?.message ?? '', /000000010000000000000007 is missing/);
  assert.not.match(late?.hint ?? '', /from the end of backup/);
  // No hole, or no WAL behind it: nothing to decide.
  assert.is(chooseBackup(input(time('2026-01-01T12:00:00Z'))).beforeGap, undefined);
  assert.is(chooseBackup(input(time('2026-01-04T00:00:00Z'), { segments: segs(1, 2, 6) })).beforeGap, undefined);
  // LSN targets are placed without the WAL: still refused here.
  throws(() => chooseBackup(input(lsn('0/3800000'), { segments: segs(1, 2, 9, [3, 4]) })), /000000010000000000000003 is missing/);
});

test('choose: an xid target with a hole after the backup end is a warning (it cannot be placed)', () => {
  const c = chooseBackup(input({ kind: 'xid', xid: '1234' }, { segments: segs(1, 2, 9, [7]) }));
  assert.is(c.backup.id, B.id);
  assert.is(c.walTo, '000000010000000000000006');
  assert.match(c.warnings[0] ?? '', /000000010000000000000007 is missing/);
});

test("choose: the backup's own WAL must be complete", () => {
  throws(() => chooseBackup(input({ kind: 'latest' }, { segments: segs(1, 2, 9, [5]) })), /backup 20260102T000000Z needs/);
});

test('choose: explicit id that ends after the target is refused', () => {
  throws(() => chooseBackup(input(lsn('0/4000000'), { requested: B.id })), /after the target/);
  throws(() => chooseBackup(input(time('2026-01-01T12:00:00Z'), { requested: B.id })), /after the target/);
});

test('choose: unknown or unfinished explicit id', () => {
  throws(() => chooseBackup(input({ kind: 'latest' }, { requested: '20250101T000000Z' })), /does not exist/, 'NOT_FOUND');
  const failed: FailedBackup = failedBackup(backup('20260103T000000Z', '0/8000028', '0/8000100', '2026-01-03T00:00:00Z'), 'test');
  throws(() => chooseBackup(input({ kind: 'latest' }, { backups: [A, B, failed], requested: failed.id })), /FAILED, not DONE/);
});

test('choose: no backup at all', () => {
  throws(() => chooseBackup(input({ kind: 'latest' }, { backups: [] })), /no DONE backup/, 'NOT_FOUND');
});

const TL2: ReadonlyMap<number, readonly HistoryEntry[]> = new Map([[2, [{ timeline: 1, switchLsn: parseLsn('0/7000100') }]]]);
const TL2_SEGS = [...segs(1, 2, 9), ...segs(2, 7, 9)];

test('choose: latest timeline follows the history; the switch segment comes from timeline 2', () => {
  const c = chooseBackup(input({ kind: 'latest' }, { histories: TL2, segments: TL2_SEGS }));
  assert.is(c.targetTimeline, 2);
  assert.is(c.walFrom, '000000010000000000000005');
  assert.is(c.walTo, '000000020000000000000009');
  assert.is(c.path.length, 2);
});

test('choose: a missing segment on timeline 2 is found even though timeline 1 has it', () => {
  throws(
    () => chooseBackup(input({ kind: 'latest' }, { histories: TL2, segments: [...segs(1, 2, 9), ...segs(2, 7, 9, [8])] })),
    /000000020000000000000008 is missing/,
  );
});

test('choose: --target-timeline current ignores newer timelines', () => {
  const c = chooseBackup(input({ kind: 'latest' }, { histories: TL2, segments: TL2_SEGS, timeline: { kind: 'current' } }));
  assert.is(c.targetTimeline, 1);
  assert.is(c.walTo, '000000010000000000000009');
});

test('choose: a timeline that forked before the newest backup ended → the older backup, named or latest, and a warning names the one passed over', () => {
  // An old primary that went on after the failover forked timeline 2 (session 17's DR walk-through:
  // the default restore refused, although --target-timeline 2, what latest resolves to, worked).
  const early: ReadonlyMap<number, readonly HistoryEntry[]> = new Map([[2, [{ timeline: 1, switchLsn: parseLsn('0/3000000') }]]]);
  const segments = [...segs(1, 2, 9), ...segs(2, 3, 6)];
  for (const timeline of [{ kind: 'number', timeline: 2 } as const, { kind: 'latest' } as const]) {
    const c = chooseBackup(input({ kind: 'latest' }, { histories: early, segments, timeline }));
    assert.is(c.backup.id, A.id);
    assert.is(c.walTo, '000000020000000000000006');
    assert.match(
      c.warnings[0] ?? '',
      new RegExp(`^1 newer backup cannot reach timeline 2 and was passed over: ${B.id}: .*forked off timeline 1 at 0/3000000, before the backup ended`),
    );
  }
  // Asked for by id, it is refused with the reason.
  throws(
    () => chooseBackup(input({ kind: 'latest' }, { histories: early, segments, requested: B.id })),
    /forked off timeline 1 at 0\/3000000, before the backup ended/,
  );
});

test('choose: following a newer timeline no backup was taken on is a warning naming --target-timeline', () => {
  const c = chooseBackup(input({ kind: 'latest' }, { histories: TL2, segments: TL2_SEGS }));
  assert.is(c.targetTimeline, 2);
  assert.is(c.warnings.length, 1);
  assert.match(c.warnings[0]!, /follows timeline 2, the newest in the archive, but no backup of server main was taken on it/);
  assert.match(c.warnings[0]!, /--target-timeline 1/);
  // Named explicitly, or once a backup was taken on timeline 2, the timeline is the server's: no warning.
  assert.equal(chooseBackup(input({ kind: 'latest' }, { histories: TL2, segments: TL2_SEGS, timeline: { kind: 'number', timeline: 2 } })).warnings, []);
  const onTl2 = backup('20260103T000000Z', '0/8000028', '0/8000138', '2026-01-03T00:00:10.000Z', { timeline: 2 });
  assert.equal(chooseBackup(input({ kind: 'latest' }, { backups: [onTl2, B, A], histories: TL2, segments: TL2_SEGS, requested: B.id })).warnings, []);
});

test('choose: a timeline with no history file', () => {
  throws(() => chooseBackup(input({ kind: 'latest' }, { timeline: { kind: 'number', timeline: 3 }, requested: B.id })), /no history file/);
});

test.run();
