import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import type { Choice } from '../../../src/restore/choose-backup.js';
import { checkStopBeforeGap, type WalScan } from '../../../src/restore/wal-scan.js';

const refusal = new PgbkError('WAL', 'target time T lies in a gap of the WAL archive: segment 000000010000000000000003 is missing', {
  server: 'main',
  hint: 'nearest reachable points: …',
});
const gapChoice = { backup: { endLsn: '0/2000100' }, beforeGap: { missing: '000000010000000000000003', refusal } } as unknown as Choice;
const noGap = {} as unknown as Choice;

function scan(over: Partial<WalScan>): WalScan {
  return { found: [], segments: 1, seconds: 0, targetReached: false, ...over };
}

test('before a gap: a commit after the target found before it lets the restore go on, and says where recovery stops', () => {
  const line = checkStopBeforeGap(
    gapChoice,
    scan({ targetReached: true, stop: { lsn: 0x2000500n, segment: '000000010000000000000002', commitMicros: 1_767_268_800_000_000n } }),
  );
  assert.match(
    line ?? '',
    /^segment 000000010000000000000003 is missing from the archive, but recovery stops before it: at the first commit after the target, LSN 0\/2000500 \(committed 2026-01-01T12:00:00(\.0+)?Z\) in 000000010000000000000002$/,
  );
});

test('before a gap: no commit after the target before it (the scan ended at the hole) throws the choice refusal', () => {
  try {
    checkStopBeforeGap(gapChoice, scan({ targetReached: false, lastCommitMicros: 1n }));
    assert.unreachable('refused');
  } catch (err) {
    assert.is(err, refusal);
  }
});

test('before a gap: a stop found before the backup ends is no stop (PostgreSQL refuses a stop before consistency)', () => {
  try {
    checkStopBeforeGap(gapChoice, scan({ targetReached: true, stop: { lsn: 0x20000f0n, segment: '000000010000000000000002', commitMicros: 1n } }));
    assert.unreachable('refused');
  } catch (err) {
    assert.is(err, refusal);
  }
});

test('before a gap: a scan that could not read the WAL refuses (even where --allow-new-tablespaces lets the scan fail), saying why', () => {
  try {
    checkStopBeforeGap(gapChoice, { failed: new Error('cannot read WAL records past 0/2000000') });
    assert.unreachable('refused');
  } catch (err) {
    assert.instance(err, PgbkError);
    const e = err as PgbkError;
    assert.is(e.message, refusal.message);
    assert.is(e.code, 'WAL');
    assert.match(e.hint ?? '', /^nearest reachable points: …; the WAL before the gap could not be read to tell: cannot read WAL records past 0\/2000000$/);
  }
});

test('no gap: nothing to decide, whatever the scan says', () => {
  assert.is(checkStopBeforeGap(noGap, scan({ targetReached: false })), undefined);
  assert.is(checkStopBeforeGap(noGap, { failed: new Error('x') }), undefined);
});

test.run();
