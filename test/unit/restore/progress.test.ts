import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PassThrough } from 'node:stream';
import { createProgress, progressEnabled, progressFactory } from '../../../src/lib/progress.js';
import { parseBaseBackupProgress } from '../../../src/pg/basebackup-progress.js';

function sink(isTTY: boolean): PassThrough & { isTTY: boolean; text: () => string } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; text: () => string };
  let buf = '';
  s.on('data', (d: Buffer) => (buf += d.toString()));
  s.isTTY = isTTY;
  s.text = () => buf;
  return s;
}

test('progressEnabled: a terminal, or PGBK_PROGRESS=1; PGBK_PROGRESS=0 wins over a terminal', () => {
  assert.is(progressEnabled(sink(true), {}), true);
  assert.is(progressEnabled(sink(false), {}), false);
  assert.is(progressEnabled(sink(false), { PGBK_PROGRESS: '1' }), true);
  assert.is(progressEnabled(sink(true), { PGBK_PROGRESS: '0' }), false);
  assert.is(progressFactory(sink(false), {}), undefined);
});

test('createProgress: one rewritten line with percent, and files only when counted', () => {
  const out = sink(true);
  const p = createProgress(out, true, 2048, 'copying:');
  p.update(1024);
  assert.match(out.text(), /^\r\x1b\[Kcopying: 50% 1\.0 KiB of 2\.0 KiB, [\d.]+ \w?i?B\/s$/);
  p.finish();
  assert.ok(out.text().endsWith('\r\x1b[K'));
  const off = sink(false);
  const q = createProgress(off, false, 10, 'x');
  q.update(5, 1);
  q.finish();
  assert.is(off.text(), '');
});

test('pg_basebackup -P lines', () => {
  assert.equal(parseBaseBackupProgress('    1234/56789 kB (2%), 0/1 tablespace (…/base.tar.zst)'), { doneBytes: 1234 * 1024, totalBytes: 56789 * 1024 });
  assert.equal(parseBaseBackupProgress('56789/56789 kB (100%), 1/1 tablespace'), { doneBytes: 56789 * 1024, totalBytes: 56789 * 1024 });
  assert.is(parseBaseBackupProgress('pg_basebackup: checkpoint completed'), undefined);
  assert.is(parseBaseBackupProgress('NOTICE:  all required WAL segments have been archived'), undefined);
});

test.run();
