import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  formatMicros,
  formatPgTime,
  parseTargetTime,
  parseTargetTimeline,
  parseTargetXid,
  parseTargetLsn,
  parseTargetName,
} from '../../../src/restore/target.js';
import { parseHistory, timelineForSegment, timelinePath } from '../../../src/restore/timeline-history.js';
import { parseLsn } from '../../../src/pg/lsn.js';

test('parseTargetTime: ISO and PostgreSQL forms, microseconds kept, zone required', () => {
  const z = parseTargetTime('2026-11-24T10:15:00Z');
  assert.is(formatMicros(z), '2026-11-24T10:15:00.000000Z');
  assert.is(parseTargetTime('2026-11-24 10:15:00.123456+00'), z + 123456n);
  assert.is(parseTargetTime('2026-11-24T11:15:00+01:00'), z);
  assert.is(parseTargetTime('2026-11-24T05:45:00-0430'), z);
  assert.is(parseTargetTime('2026-11-24 10:15:00 UTC'), z);
  assert.is(formatPgTime(parseTargetTime('2026-11-24T11:15:00.000001+01:00')), '2026-11-24 10:15:00.000001+00');
  // Nanoseconds (date +%N) are cut to the microsecond, never rounded up past the time given.
  assert.is(parseTargetTime('2026-11-24T10:15:00.123456999Z'), z + 123456n);
  assert.is(parseTargetTime('2026-11-24T10:15:00.1234567Z'), z + 123456n);
  assert.throws(() => parseTargetTime('2026-11-24T10:15:00.1234567890Z'), /ISO-8601/);
  assert.throws(() => parseTargetTime('2026-11-24T10:15:00'), /time zone/);
  assert.throws(() => parseTargetTime('2026-02-30T10:15:00Z'), /no such date/);
  assert.throws(() => parseTargetTime('yesterday'), /ISO-8601/);
});

test('other target parsers', () => {
  assert.is(parseTargetLsn('0/3000060'), 0x3000060n);
  assert.throws(() => parseTargetLsn('3000060'), /not an LSN/);
  assert.is(parseTargetXid('000123'), '123');
  assert.throws(() => parseTargetXid('abc'), /transaction id/);
  assert.throws(() => parseTargetXid('2'), /transaction id/);
  assert.is(parseTargetName('before drop'), 'before drop');
  assert.throws(() => parseTargetName('x'.repeat(64)), /1 to 63 bytes/);
  assert.equal(parseTargetTimeline('latest'), { kind: 'latest' });
  assert.equal(parseTargetTimeline('current'), { kind: 'current' });
  assert.equal(parseTargetTimeline('3'), { kind: 'number', timeline: 3 });
  assert.throws(() => parseTargetTimeline('0'), /timeline/);
});

test('parseHistory: PostgreSQL history format', () => {
  const text = '1\t0/3000108\tno recovery target specified\n\n2\t0/5000000\tat restore point "x"\n';
  assert.equal(parseHistory(text, 3), [
    { timeline: 1, switchLsn: 0x3000108n },
    { timeline: 2, switchLsn: 0x5000000n },
  ]);
  assert.throws(() => parseHistory('3\t0/1\tx\n', 3), /out of order/);
  assert.throws(() => parseHistory('garbage\n', 2), /cannot parse/);
});

test('timelinePath and the timeline each segment is read from', () => {
  const seg = 16 * 1024 * 1024;
  const hist = parseHistory('1\t0/3000108\tx\n2\t0/5000000\ty\n', 3);
  const p = timelinePath(1, parseLsn('0/2000100'), 3, hist);
  assert.equal(p, [
    { timeline: 1, begin: 0n, end: 0x3000108n },
    { timeline: 2, begin: 0x3000108n, end: 0x5000000n },
    { timeline: 3, begin: 0x5000000n },
  ]);
  assert.is(timelineForSegment(p, 2, seg), 1);
  assert.is(timelineForSegment(p, 3, seg), 2);
  assert.is(timelineForSegment(p, 4, seg), 2);
  assert.is(timelineForSegment(p, 5, seg), 3);
  assert.throws(() => timelinePath(2, 0n, 3, [{ timeline: 1, switchLsn: 1n }]), /does not descend/);
});

test.run();
