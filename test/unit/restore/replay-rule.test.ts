/**
 * Which records a recovery to each kind of target replays (PostgreSQL 15's recoveryStopsBefore /
 * recoveryStopsAfter with recovery_target_inclusive = true), and the tablespace record's decoding.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WalRecord } from '../../../src/pg/wal-records.js';
import { replayRule, tablespaceCreation, wantedRecords } from '../../../src/restore/replay-rule.js';
import { parseTargetTime } from '../../../src/restore/target.js';

const rec = (lsn: number, extra: Partial<WalRecord> = {}): WalRecord => ({
  lsn,
  endLsn: lsn + 40,
  prevLsn: lsn - 40,
  totLen: 40,
  xid: 0,
  rmid: 10,
  info: 0,
  ...extra,
});
const PG_EPOCH_MICROS = 946_684_800_000_000n;

function commitAt(lsn: number, iso: string, xid = 5): WalRecord {
  const main = Buffer.alloc(8);
  main.writeBigInt64LE(parseTargetTime(iso) - PG_EPOCH_MICROS, 0);
  return rec(lsn, { rmid: 1, info: 0x00, xid, mainData: main });
}

test('latest replays everything', () => {
  assert.is(replayRule({ kind: 'latest' }, 0n)(rec(100)), 'replay');
});

test('LSN (inclusive): the first record at or after the target is the last replayed', () => {
  const r = replayRule({ kind: 'lsn', lsn: 0x1000n }, 0n);
  assert.is(r(rec(0xff8)), 'replay');
  assert.is(r(rec(0x1000)), 'replay-then-stop');
  assert.is(replayRule({ kind: 'lsn', lsn: 0xffcn }, 0n)(rec(0x1000)), 'replay-then-stop');
});

test('immediate: up to the record that reaches the backup end', () => {
  const r = replayRule({ kind: 'immediate' }, 0x2000n);
  assert.is(r(rec(0x1000)), 'replay');
  assert.is(r(rec(0x1fe0)), 'replay-then-stop');
});

test('xid: after its commit or abort; low 32 bits of an epoch-qualified xid', () => {
  const r = replayRule({ kind: 'xid', xid: String((1n << 32n) + 900n) }, 0n);
  assert.is(r(rec(1, { rmid: 1, info: 0x00, xid: 899 })), 'replay');
  assert.is(r(rec(1, { rmid: 1, info: 0x80, xid: 900 })), 'replay-then-stop', 'commit with XLOG_XACT_HAS_INFO');
  assert.is(r(rec(1, { rmid: 1, info: 0x20, xid: 900 })), 'replay-then-stop', 'abort');
  assert.is(r(rec(1, { rmid: 10, info: 0, xid: 900 })), 'replay', 'not a commit');
  assert.is(r(rec(1, { rmid: 1, info: 0x10, xid: 900 })), 'replay', 'PREPARE is not the end');
});

test('time (inclusive): stops before the first commit or abort after the target', () => {
  const r = replayRule({ kind: 'time', text: 't', micros: parseTargetTime('2026-11-24T10:00:00Z') }, 0n);
  assert.is(r(commitAt(1, '2026-11-24T10:00:00Z')), 'replay', 'a commit at the target time is included');
  assert.is(r(commitAt(2, '2026-11-24T10:00:00.000001Z')), 'stop-before');
  assert.is(r(rec(3)), 'replay');
  assert.ok(wantedRecords({ kind: 'time', text: 't', micros: 0n })(1, 0x00));
  assert.not.ok(wantedRecords({ kind: 'lsn', lsn: 0n })(1, 0x00));
});

test('name: after the restore point of that name', () => {
  const main = Buffer.alloc(8 + 64);
  main.write('before_ts', 8);
  const r = replayRule({ kind: 'name', name: 'before_ts' }, 0n);
  assert.is(r(rec(1, { rmid: 0, info: 0x70, mainData: main })), 'replay-then-stop');
  assert.is(replayRule({ kind: 'name', name: 'before' }, 0n)(rec(1, { rmid: 0, info: 0x70, mainData: main })), 'replay', 'a prefix is another name');
});

test('tablespaceCreation decodes xl_tblspc_create_rec', () => {
  const main = Buffer.concat([Buffer.alloc(4), Buffer.from('/srv/ts\0')]);
  main.writeUInt32LE(16390, 0);
  assert.equal(tablespaceCreation(rec(0x5000, { rmid: 5, info: 0, mainData: main })), {
    oid: '16390',
    location: '/srv/ts',
    lsn: 0x5000n,
    prevLsn: 0x5000n - 40n,
  });
  assert.is(tablespaceCreation(rec(0x5000, { rmid: 5, info: 0x10, mainData: main })), undefined, 'DROP');
});

test.run();
