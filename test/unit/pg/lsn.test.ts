import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { endLsnToSegmentName, formatLsn, isLsn, lsnToSegmentName, lsnToSegmentNumber, parseLsn, segmentStartLsn } from '../../../src/pg/lsn.js';

const MiB = 1024 * 1024;

test('parse and format', () => {
  const cases: readonly [string, bigint, string][] = [
    ['16/B374D848', 0x16b374d848n, '16/B374D848'],
    ['0/0', 0n, '0/0'],
    ['0/1000000', 0x1000000n, '0/1000000'],
    ['a/ff', 0xa000000ffn, 'A/FF'],
    ['FFFFFFFF/FFFFFFFF', (1n << 64n) - 1n, 'FFFFFFFF/FFFFFFFF'],
    ['00000001/00000002', 0x100000002n, '1/2'],
  ];
  for (const [text, value, formatted] of cases) {
    assert.is(parseLsn(text), value, text);
    assert.is(formatLsn(value), formatted, text);
  }
  for (const bad of ['', '16', '16/', '/1', '123456789/0', '16/B374D84G', ' 0/1']) {
    assert.not.ok(isLsn(bad), bad);
    assert.throws(() => parseLsn(bad), /not an LSN/, bad);
  }
  assert.throws(() => formatLsn(-1n));
  assert.throws(() => formatLsn(1n << 64n));
});

test('LSN to segment (XLByteToSeg)', () => {
  const cases: readonly [string, number, number, string][] = [
    ['0/1000000', 1, 16 * MiB, '000000010000000000000001'],
    ['0/1FFFFFF', 1, 16 * MiB, '000000010000000000000001'],
    ['0/2000028', 1, 16 * MiB, '000000010000000000000002'],
    ['0/FF000000', 1, 16 * MiB, '0000000100000000000000FF'],
    ['1/0', 1, 16 * MiB, '000000010000000100000000'],
    ['16/B374D848', 3, 16 * MiB, '0000000300000016000000B3'],
    ['16/B374D848', 3, 1 * MiB, '000000030000001600000B37'],
    ['16/B374D848', 3, 1024 * MiB, '000000030000001600000002'],
  ];
  for (const [lsn, tli, segSize, name] of cases) {
    assert.is(lsnToSegmentName(parseLsn(lsn), tli, segSize), name, `${lsn} ${segSize}`);
  }
  assert.is(lsnToSegmentNumber(parseLsn('1/0'), 16 * MiB), 256);
  assert.is(segmentStartLsn(256, 16 * MiB), parseLsn('1/0'));
});

test('end of backup (XLByteToPrevSeg): a boundary LSN belongs to the previous segment', () => {
  const cases: readonly [string, string][] = [
    ['0/2000100', '000000010000000000000002'],
    ['0/3000000', '000000010000000000000002'], // exactly at a boundary
    ['0/3000001', '000000010000000000000003'],
    ['1/0', '0000000100000000000000FF'], // boundary that is also a log boundary
    ['1/1', '000000010000000100000000'],
  ];
  for (const [lsn, name] of cases) assert.is(endLsnToSegmentName(parseLsn(lsn), 1, 16 * MiB), name, lsn);
  assert.throws(() => endLsnToSegmentName(0n, 1, 16 * MiB));
});

test.run();
