import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PassThrough } from 'node:stream';
import { PgbkError } from '../../../src/errors.js';
import { run } from '../../../src/cli/dispatch.js';
import { parseRestoreArgs } from '../../../src/cli/restore.js';
import type { CliIo } from '../../../src/cli/io.js';

// Errors become exit statuses in the one catch of the dispatcher: drive the commands through it.
const restoreMain = (args: string[], io: CliIo): Promise<number> => run(['restore', ...args], io);
const walFetchMain = (args: string[], io: CliIo): Promise<number> => run(['wal-fetch', ...args], io);

function usage(args: string[], re: RegExp): void {
  try {
    parseRestoreArgs(args);
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.is((err as PgbkError).code, 'USAGE');
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected a usage error for ${args.join(' ')}`);
}

test('restore args: defaults', () => {
  const a = parseRestoreArgs(['main', '--target-dir', '/tmp/x']);
  assert.is(a.server, 'main');
  assert.is(a.requested, undefined);
  assert.equal(a.target, { kind: 'latest' });
  assert.is(a.action, 'pause');
  assert.is(a.archiving, 'refuse', "a restored copy refuses to archive unless told otherwise (archive_command = 'false')");
  assert.is(parseRestoreArgs(['main', '--target-dir', '/tmp/x', '--no-archive']).archiving, 'off');
  assert.is(parseRestoreArgs(['main', '--target-dir', '/tmp/x', '--keep-archiving']).archiving, 'keep');
  usage(['main', '--target-dir', '/tmp/x', '--no-archive', '--keep-archiving'], /--no-archive and --keep-archiving conflict/);
  assert.equal(a.timeline, { kind: 'latest' });
  assert.is(a.force, false);
  assert.is(a.verifyChecksums, false, 'the CRC32C pass is opt-in (sizes + sha256 of the stored tars by default)');
  assert.is(parseRestoreArgs(['main', '--target-dir', '/tmp/x', '--verify-checksums']).verifyChecksums, true);
});

test('restore args: each target', () => {
  assert.is(parseRestoreArgs(['main', 'latest', '--target-dir', 'd', '--target-lsn', '0/3000060']).target.kind, 'lsn');
  assert.is(parseRestoreArgs(['main', '--target-dir', 'd', '--target-xid', '900']).target.kind, 'xid');
  assert.is(parseRestoreArgs(['main', '--target-dir', 'd', '--target-name', 'n']).target.kind, 'name');
  assert.is(parseRestoreArgs(['main', '--target-dir', 'd', '--target-immediate']).target.kind, 'immediate');
  const t = parseRestoreArgs([
    'main',
    '20260101T000000Z',
    '--target-dir',
    'd',
    '--target-time',
    '2026-01-01T00:00:00Z',
    '--target-action',
    'promote',
    '--target-timeline',
    '2',
    '--force',
    '--json',
    '-c',
    'f.yaml',
  ]);
  assert.is(t.target.kind, 'time');
  assert.is(t.requested, '20260101T000000Z');
  assert.is(t.action, 'promote');
  assert.equal(t.timeline, { kind: 'number', timeline: 2 });
  assert.ok(t.force && t.json);
  assert.is(t.config, 'f.yaml');
});

test('restore args: conflicts and mistakes name the flags', () => {
  usage(['main', '--target-dir', 'd', '--target-lsn', '0/1', '--target-xid', '5'], /--target-lsn and --target-xid conflict/);
  usage(['main', '--target-dir', 'd', '--target-time', '2026-01-01T00:00:00Z', '--target-immediate'], /--target-time and --target-immediate conflict/);
  usage(['main'], /--target-dir DIR is required/);
  usage([], /missing SERVER/);
  usage(['main', 'yesterday', '--target-dir', 'd'], /not a backup id/);
  // The data directory given where the backup id goes: the hint names --target-dir.
  try {
    parseRestoreArgs(['main', '/srv/restore']);
    assert.unreachable('a path as the backup id must be refused');
  } catch (err) {
    assert.is((err as PgbkError).hint, 'the directory to restore into is given as --target-dir /srv/restore');
  }
  usage(['main', '--target-dir', 'd', '--target-action', 'promote'], /--target-action needs a target/);
  usage(['main', '--target-dir', 'd', '--target-immediate', '--target-action', 'explode'], /pause, promote or shutdown/);
  usage(['main', '--target-dir', 'd', '--target-time', '2026-01-01 00:00'], /time zone|ISO-8601/);
  usage(['main', '--target-dir', 'd', '--bogus'], /bogus/);
  usage(['main', '--target-dir', 'd', '--target-timeline', 'newest'], /--target-timeline/);
});

function io() {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  return { io: { stdout: out, stderr: err, env: {}, cwd: '/tmp', isTTY: false }, text: () => ({ o, e }) };
}

test('restore main: a usage error exits 1 with one line', async () => {
  const x = io();
  assert.is(await restoreMain(['main', '--target-dir', 'd', '--target-lsn', '0/1', '--target-name', 'n'], x.io), 1);
  assert.match(x.text().e, /--target-lsn and --target-name conflict/);
});

test('wal-fetch main: bad arguments and a missing config are fatal for PostgreSQL (status > 125), never 1', async () => {
  const x = io();
  assert.is(await walFetchMain(['main'], x.io), 255);
  assert.match(x.text().e, /missing WALNAME/);
  const y = io();
  assert.is(
    await walFetchMain(['--config', '/nonexistent/pgbk.yaml', 'main', '000000010000000000000001', 'pg_wal/RECOVERYXLOG', '--prefetch', '0'], y.io),
    255,
  );
  assert.match(y.text().e, /FATAL/);
  const z = io();
  assert.is(await walFetchMain(['main', 'not-a-wal-name', 'x'], z.io), 255);
});

test.run();
