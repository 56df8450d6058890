import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compressionArgs, meaningfulStderr, parseVerboseLsns } from '../../../src/pg/basebackup.js';
import { archivedUpTo } from '../../../src/pg/archiver.js';
import { binaryMajor, programMajor } from '../../../src/pg/pg-bin.js';
import { unitBytes } from '../../../src/pg/probe.js';

test('compressionArgs: server-side when client and server are 15+, client-side otherwise', () => {
  assert.equal(compressionArgs('zstd', 15, 15), ['--compress=server-zstd:level=1,workers=2']);
  assert.equal(compressionArgs('zstd', 16, 14), ['--compress=client-zstd:level=1']);
  assert.equal(compressionArgs('gzip', 15, 16), ['--compress=server-gzip:1']);
  assert.equal(compressionArgs('gzip', 15, 13), ['--compress=client-gzip:1']);
  assert.equal(compressionArgs('gzip', 14, 14), ['-Z', '1']);
  assert.equal(compressionArgs('none', 15, 15), []);
  assert.throws(() => compressionArgs('zstd', 14, 14), /zstd needs pg_basebackup 15/);
});

test('parseVerboseLsns: start point with timeline, end point', () => {
  const stderr = [
    'pg_basebackup: initiating base backup, waiting for checkpoint to complete',
    'pg_basebackup: checkpoint completed',
    'pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1',
    'pg_basebackup: write-ahead log end point: 0/2000100',
    'pg_basebackup: base backup completed',
  ].join('\n');
  assert.equal(parseVerboseLsns(stderr), { start: '0/2000028', startTimeline: 1, end: '0/2000100' });
  assert.equal(parseVerboseLsns('nothing'), {});
});

test('meaningfulStderr: prefers error/detail lines, drops progress', () => {
  const stderr =
    'pg_basebackup: initiating base backup\n12/3456 kB (0%), 0/1 tablespace\r' +
    'pg_basebackup: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n' +
    '\tIs the server running on that host and accepting TCP/IP connections?\n';
  assert.match(meaningfulStderr(stderr), /^pg_basebackup: error: connection to server .* Connection refused$/);
  assert.is(meaningfulStderr('a\nb\nc\nd\n'), 'b; c; d');
  assert.is(meaningfulStderr(''), '(no output)');
});

test('unitBytes: pg_settings units', () => {
  assert.is(unitBytes('B'), 1);
  assert.is(unitBytes(null), 1);
  assert.is(unitBytes('8kB'), 8192);
  assert.is(unitBytes('MB'), 1024 * 1024);
  assert.throws(() => unitBytes('parsecs'), /unexpected pg_settings unit/);
});

test('archivedUpTo: same timeline, at or past the segment; .backup and .partial count, .history does not', () => {
  const seg = '000000010000000000000005';
  assert.ok(archivedUpTo(seg, seg));
  assert.ok(archivedUpTo('000000010000000000000006', seg));
  assert.ok(archivedUpTo('000000010000000000000005.00000028.backup', seg));
  assert.ok(!archivedUpTo('000000010000000000000004', seg));
  assert.ok(!archivedUpTo('000000010000000000000004.00000028.backup', seg));
  assert.ok(!archivedUpTo('000000020000000000000009', seg), 'another timeline');
  assert.ok(!archivedUpTo('00000002.history', seg));
  assert.ok(!archivedUpTo('', seg));
});

test('binaryMajor: the Debian directory names the major; anything else asks the program', () => {
  assert.is(binaryMajor('/usr/lib/postgresql/15/bin/pg_basebackup'), 15);
  assert.is(binaryMajor('/usr/lib/postgresql/17/bin/pg_basebackup'), 17);
  // The installed 15 agrees with what the program says of itself.
  assert.is(binaryMajor('/usr/lib/postgresql/15/bin/pg_basebackup'), programMajor('/usr/lib/postgresql/15/bin/pg_basebackup'));
  assert.throws(() => binaryMajor('/nonexistent/pg_basebackup'), /cannot run/);
});

test.run();
