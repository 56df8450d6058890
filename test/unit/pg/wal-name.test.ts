import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import {
  classifyIncoming,
  historyNameFor,
  isBackupHistoryName,
  isHistoryName,
  isPartialName,
  isSegmentName,
  isValidSegmentSize,
  parseSegmentName,
  segmentNameFrom,
  segmentNumber,
  walDirName,
} from '../../../src/pg/wal-name.js';

const MiB = 1024 * 1024;

test('name patterns', () => {
  const cases: readonly [string, boolean, boolean, boolean, boolean][] = [
    // name, segment, history, backup, partial
    ['000000010000000000000001', true, false, false, false],
    ['0000000100000000000000FF', true, false, false, false],
    ['0000000100000000000000ff', false, false, false, false], // PostgreSQL writes upper case
    ['00000001000000000000001', false, false, false, false],
    ['0000000100000000000000010', false, false, false, false],
    ['00000002.history', false, true, false, false],
    ['0000002.history', false, false, false, false],
    ['000000010000000000000002.00000028.backup', false, false, true, false],
    ['000000010000000000000002.0000028.backup', false, false, false, false],
    ['000000010000000000000002.partial', false, false, false, true],
    ['000000010000000000000002.partial.zst', false, false, false, false],
  ];
  for (const [name, seg, hist, bak, part] of cases) {
    assert.is(isSegmentName(name), seg, `segment ${name}`);
    assert.is(isHistoryName(name), hist, `history ${name}`);
    assert.is(isBackupHistoryName(name), bak, `backup ${name}`);
    assert.is(isPartialName(name), part, `partial ${name}`);
  }
});

test('parseSegmentName', () => {
  assert.equal(parseSegmentName('0000000A000000160000003E'), { timeline: 10, log: 0x16, seg: 0x3e });
  assert.equal(parseSegmentName('FFFFFFFFFFFFFFFFFFFFFFFF'), { timeline: 0xffffffff, log: 0xffffffff, seg: 0xffffffff });
  assert.is(parseSegmentName('000000000000000000000001'), undefined, 'timeline 0 is invalid');
  assert.is(parseSegmentName('00000001.history'), undefined);
});

test('segment numbers and names round-trip across log boundaries (16 MiB)', () => {
  const cases: readonly [string, number][] = [
    ['000000010000000000000000', 0],
    ['000000010000000000000001', 1],
    ['0000000100000000000000FF', 255],
    ['000000010000000100000000', 256], // …FF wraps to the next log
    ['000000010000000100000001', 257],
    ['000000030000000A0000003E', 10 * 256 + 0x3e],
    ['00000001FFFFFFFF000000FF', 0xffffffff * 256 + 255],
  ];
  for (const [name, segno] of cases) {
    assert.is(segmentNumber(name, 16 * MiB), segno, name);
    assert.is(segmentNameFrom(Number.parseInt(name.slice(0, 8), 16), segno, 16 * MiB), name);
  }
  // consecutive names across the boundary
  const names = [254, 255, 256, 257].map((n) => segmentNameFrom(1, n, 16 * MiB));
  assert.equal(names, ['0000000100000000000000FE', '0000000100000000000000FF', '000000010000000100000000', '000000010000000100000001']);
});

test('other segment sizes', () => {
  const cases: readonly [number, number, string][] = [
    // segSize, segno, name on timeline 1
    [1 * MiB, 4095, '000000010000000000000FFF'],
    [1 * MiB, 4096, '000000010000000100000000'],
    [64 * MiB, 63, '00000001000000000000003F'],
    [64 * MiB, 64, '000000010000000100000000'],
    [1024 * MiB, 3, '000000010000000000000003'],
    [1024 * MiB, 4, '000000010000000100000000'],
  ];
  for (const [segSize, segno, name] of cases) {
    assert.is(segmentNameFrom(1, segno, segSize), name, `${segSize}/${segno}`);
    assert.is(segmentNumber(name, segSize), segno, `${segSize}/${name}`);
  }
  // a name impossible for the segment size
  assert.throws(
    () => segmentNumber('000000010000000000000100', 16 * MiB),
    (e: unknown) => e instanceof PgbkError,
  );
  assert.throws(
    () => segmentNumber('000000010000000000000004', 1024 * MiB),
    (e: unknown) => e instanceof PgbkError,
  );
  // .backup and .partial names number like their segment
  assert.is(segmentNumber('000000010000000100000002.00000028.backup', 16 * MiB), 258);
});

test('segment sizes PostgreSQL accepts', () => {
  for (const ok of [1, 2, 16, 64, 1024].map((m) => m * MiB)) assert.ok(isValidSegmentSize(ok), String(ok));
  for (const bad of [0, 512 * 1024, 3 * MiB, 2048 * MiB, 16 * MiB + 1]) assert.not.ok(isValidSegmentSize(bad), String(bad));
  assert.throws(() => segmentNameFrom(1, 1, 3 * MiB), /segment size/);
  assert.throws(() => segmentNameFrom(0, 1, 16 * MiB), /timeline/);
  assert.throws(() => segmentNameFrom(1, -1, 16 * MiB), /out of range/);
});

test('walDirName', () => {
  assert.is(walDirName('000000020000000A0000003E'), '000000020000000A');
  assert.is(walDirName('000000020000000A0000003E.00000028.backup'), '000000020000000A');
  assert.is(walDirName('000000020000000A0000003E.partial'), '000000020000000A');
  assert.is(walDirName('00000002.history'), '');
  assert.is(historyNameFor(0x1a), '0000001A.history');
  assert.throws(
    () => walDirName('../etc/passwd'),
    (e: unknown) => e instanceof PgbkError && e.code === 'WAL',
  );
});

test('classifyIncoming', () => {
  const cases: readonly [string, string][] = [
    ['000000010000000000000001', 'segment'],
    ['00000002.history', 'history'],
    ['000000010000000000000002.00000028.backup', 'backup'],
    ['000000010000000000000002.partial', 'partial'],
    ['.000000010000000000000001.Xa8d2k', 'in-flight'], // rsync temp
    ['.000000010000000000000001.tmp-123-abc', 'in-flight'], // pgbk temp
    ['000000010000000000000001.tmp', 'in-flight'],
    ['000000010000000000000001~', 'in-flight'],
    ['000000010000000000000001.zst', 'unknown'],
    ['0000000100000000000000ff', 'unknown'],
    ['README', 'unknown'],
  ];
  for (const [name, kind] of cases) assert.is(classifyIncoming(name), kind, name);
});

test.run();
