import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planIncoming } from '../../../src/plan/incoming.js';
import type { IncomingFile } from '../../../src/model/types.js';
import { IDENTITY, SEG, seg } from './fixtures.js';

const NOW = new Date('2026-11-24T12:00:00Z');

const files: readonly IncomingFile[] = [
  { name: '.000000010000000A00000033.tmp-1234', kind: 'in-flight', size: 100 },
  { name: '000000010000000A00000031', kind: 'segment', size: SEG },
  { name: '000000010000000A00000032', kind: 'segment', size: 123 },
  { name: '000000010000000A00000033', kind: 'segment', size: SEG },
  { name: '000000010000000A00000031.00000028.backup', kind: 'backup', size: 300 },
  { name: '000000010000000A00000034.partial', kind: 'partial', size: SEG },
  { name: '00000002.history', kind: 'history', size: 42 },
  { name: 'core.1234', kind: 'unknown', size: 9 },
];

test("archive valid files (a promoted standby's .partial too) in one action, quarantine the rest, ignore in-flight", () => {
  const d = planIncoming('main', IDENTITY, files, NOW);
  assert.ok(d.archive);
  assert.equal(d.archive.files, [
    '000000010000000A00000031',
    '000000010000000A00000031.00000028.backup',
    '000000010000000A00000033',
    '000000010000000A00000034.partial',
    '00000002.history',
  ]);
  assert.is(
    d.archive.subject,
    '2 segments 000000010000000A00000031…000000010000000A00000033, 1 history file, 1 backup history file, 1 partial segment from incoming/',
  );
  assert.equal(d.segments, ['000000010000000A00000031', '000000010000000A00000033']);
  assert.equal(
    d.quarantine.map((q) => [q.file, q.reason]),
    [
      ['000000010000000A00000032', 'size 123 bytes, expected 16777216'],
      ['core.1234', 'not a WAL file name'],
    ],
  );
});

test('before first contact segment sizes are not judged', () => {
  const d = planIncoming('main', undefined, [{ name: seg(1, 5), kind: 'segment', size: 123 }], NOW);
  assert.equal(d.archive?.files, [seg(1, 5)]);
  assert.is(d.archive?.subject, `1 segment ${seg(1, 5)} from incoming/`);
  assert.equal(d.quarantine, []);
});

test('a file classified as a segment whose name is not one is quarantined', () => {
  const d = planIncoming('main', IDENTITY, [{ name: '00000001000000000000000g', kind: 'segment', size: SEG }], NOW);
  assert.is(d.archive, undefined);
  assert.is(d.quarantine[0]?.reason, 'not a WAL file name');
});

test('only in-flight files: nothing to do', () => {
  const d = planIncoming(
    'main',
    IDENTITY,
    files.filter((f) => f.kind === 'in-flight'),
    NOW,
  );
  assert.is(d.archive, undefined);
  assert.equal(d.quarantine, []);
});

test('only a history file', () => {
  const d = planIncoming('main', IDENTITY, [{ name: '00000003.history', kind: 'history', size: 80 }], NOW);
  assert.is(d.archive?.subject, '1 history file from incoming/');
  assert.equal(d.segments, []);
});

test('a short segment written moments ago is left alone (a plain cp still writing); an old one is quarantined', () => {
  const recent = { name: seg(1, 7), kind: 'segment' as const, size: 4096, mtime: '2026-11-24T11:59:30Z' };
  const old = { name: seg(1, 8), kind: 'segment' as const, size: 4096, mtime: '2026-11-24T11:50:00Z' };
  const d = planIncoming('main', IDENTITY, [recent, old], NOW);
  assert.equal(d.archive, undefined);
  assert.equal(
    d.quarantine.map((q) => q.file),
    [seg(1, 8)],
  );
});

test.run();
