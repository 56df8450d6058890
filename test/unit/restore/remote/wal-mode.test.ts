import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { splitRemoteArgs } from '../../../../src/restore/remote.js';
import { decideWalMode, fetchCommands, walToCopy } from '../../../../src/restore/wal-mode.js';

const PUSH = `archive_command = '''/usr/bin/node'' ''/p/cli.js'' wal-push --to ssh://root@bk:2222/cat --identity /k --known-hosts /kh --remote-pgbk ''node /r/cli.js'' main %p'`;

test('--wal-from wins; the DB-host pgbk comes from --db-pgbk, else from archive_command, else "pgbk"', () => {
  const m = decideWalMode({ from: 'ssh://u@h/cat', identityFile: '/i' }, { postgresqlConf: '', autoConf: '' }, '/cat', 'main');
  assert.is(m.kind, 'fetch');
  if (m.kind !== 'fetch') return;
  assert.is(m.source, 'flag');
  assert.equal(m.dbPgbk, ['pgbk']);
  const c = fetchCommands(m);
  assert.match(c.restoreCommand, /exec pgbk wal-fetch --from ssh:\/\/u@h\/cat --identity \/i main %f %p$/);
  assert.match(c.restoreCommand, /^n=0; h=; while :; do if \[ pg_wal\/%f -ef \.pgbk-spool\/%f\.link \]; /);
  assert.is(c.recoveryEndCommand, 'pgbk wal-fetch --clean-spool');
  const m2 = decideWalMode({ from: 'ssh://u@h/cat', dbPgbk: '/n /c.js' }, { postgresqlConf: PUSH, autoConf: '' }, '/cat', 'main');
  assert.equal(m2.kind === 'fetch' && m2.dbPgbk, ['/n', '/c.js']);
  const m3 = decideWalMode({ from: 'ssh://u@h/cat' }, { postgresqlConf: PUSH, autoConf: '' }, '/cat', 'main');
  assert.equal(m3.kind === 'fetch' && m3.dbPgbk, ['/usr/bin/node', '/p/cli.js']);
});

test('derived from a wal-push --to archive_command into this catalog; otherwise copy, with the reason', () => {
  const m = decideWalMode({}, { postgresqlConf: PUSH, autoConf: '' }, '/cat/', 'main');
  assert.is(m.kind, 'fetch');
  if (m.kind !== 'fetch') return;
  assert.is(m.source, 'archive_command');
  assert.equal(m.options, {
    source: { user: 'root', host: 'bk', port: 2222, catalog: '/cat' },
    from: 'ssh://root@bk:2222/cat',
    server: 'main',
    identityFile: '/k',
    knownHosts: '/kh',
    remotePgbk: 'node /r/cli.js',
    prefetch: 8,
  });
  assert.match(
    fetchCommands(m).restoreCommand,
    /exec \/usr\/bin\/node \/p\/cli\.js wal-fetch --from ssh:\/\/root@bk:2222\/cat --identity \/k --known-hosts \/kh --remote-pgbk 'node \/r\/cli\.js' main %f %p$/,
  );
  const other = decideWalMode({}, { postgresqlConf: PUSH, autoConf: '' }, '/elsewhere', 'main');
  assert.equal(other, { kind: 'copy', why: 'archive_command pushes to /cat, not to this catalog /elsewhere' });
  assert.match((decideWalMode({}, { postgresqlConf: PUSH, autoConf: '' }, '/cat', 'other') as { why: string }).why, /as server "main"/);
  assert.match(
    (decideWalMode({}, { postgresqlConf: '', autoConf: "archive_command = 'cp %p /a/%f'" }, '/cat', 'main') as { why: string }).why,
    /not a pgbk wal-push/,
  );
  assert.match((decideWalMode({}, { postgresqlConf: '', autoConf: '' }, '/cat', 'main') as { why: string }).why, /no archive_command/);
});

test('copy mode: histories plus segments from the begin WAL, up to the target segment when bounded', () => {
  const archived = {
    segments: ['000000010000000000000002', '000000010000000000000003', '000000010000000000000004', '000000020000000000000004', '000000020000000000000005'],
    histories: ['00000002.history'],
    backupFiles: [],
  };
  const seg = 16 * 1024 * 1024;
  assert.equal(walToCopy(archived, '000000010000000000000003', '000000020000000000000004', seg), [
    '00000002.history',
    '000000010000000000000003',
    '000000010000000000000004',
    '000000020000000000000004',
  ]);
  assert.is(walToCopy(archived, '000000010000000000000003', undefined, seg).length, 5);
});

test('restore --remote flags: --wal-* and --tablespace-dir are split off; bad ones refused before anything runs', () => {
  const r = splitRemoteArgs([
    'main',
    '--target-dir',
    '/d',
    '--remote',
    'postgres@db1',
    '--wal-from',
    'ssh://b@bk/cat',
    '--wal-identity',
    '/k',
    '--tablespace-dir',
    '16385=/ts',
    '--db-pgbk',
    'node /c.js',
  ]);
  assert.equal(r.rest, ['main', '--target-dir', '/d']);
  assert.equal(r.remote?.wal, { from: 'ssh://b@bk/cat', identityFile: '/k', dbPgbk: 'node /c.js' });
  assert.equal(r.remote?.tablespaceDirs, ['16385=/ts']);
  assert.equal(splitRemoteArgs(['main', '--target-dir', '/d', '--tablespace-dir', '/t']).rest, ['main', '--target-dir', '/d', '--tablespace-dir', '/t']);
  assert.throws(() => splitRemoteArgs(['main', '--remote', 'p@db', '--wal-from', 'bk:/cat']), /--wal-from bk:\/cat: expected ssh:\/\/USER@HOST/);
  assert.throws(() => splitRemoteArgs(['main', '--remote', 'p@db', '--wal-identity', '/k']), /go with --wal-from/);
  assert.throws(() => splitRemoteArgs(['main', '--remote', 'p@db', '--wal-from', 'ssh://b@bk/cat', '--wal-identity', 'k']), /absolute path/);
  assert.throws(() => splitRemoteArgs(['main', '--wal-from', 'ssh://b@bk/cat']), /go with --remote/);
});

test.run();
