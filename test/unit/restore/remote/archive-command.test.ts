import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fastPathArchiveCommand } from '../../../../src/wal-push/fast-path.js';
import { confSetting, deriveFetchFromArchiveCommand, effectiveArchiveCommand, splitShellWords } from '../../../../src/restore/archive-command.js';

test('confSetting: last value wins, quotes, escapes, comments, bare words', () => {
  const text = ["#archive_command = 'commented'", "archive_command = 'first'", "archive_command='it''s \\\\ here' # trailing comment", 'archive_mode on'].join(
    '\n',
  );
  assert.is(confSetting(text, 'archive_command'), "it's \\ here");
  assert.is(confSetting(text, 'archive_mode'), 'on');
  assert.is(confSetting(text, 'restore_command'), undefined);
  assert.is(effectiveArchiveCommand("archive_command = 'a'", "archive_command = 'b'"), 'b');
  assert.is(effectiveArchiveCommand("archive_command = 'a'", ''), 'a');
});

test('splitShellWords: quoting as sh does; compound commands are not split', () => {
  assert.equal(splitShellWords(`'/usr/bin/node' "/opt/p gbk/cli.js" wal-push a\\ b %p`), ['/usr/bin/node', '/opt/p gbk/cli.js', 'wal-push', 'a b', '%p']);
  assert.equal(splitShellWords(`x 'it'\\''s'`), ['x', "it's"]);
  assert.is(splitShellWords('test ! -f /x/%f && cp %p /x/%f'), undefined);
  assert.is(splitShellWords('echo $(id)'), undefined);
  assert.is(splitShellWords("echo 'open"), undefined);
});

test('deriveFetchFromArchiveCommand: wal-push --to ssh:// gives the fetch settings and the DB host pgbk', () => {
  const d = deriveFetchFromArchiveCommand(
    `'/usr/bin/node' '/opt/pgbk/cli.js' 'wal-push' '--to' 'ssh://root@127.0.0.1:2222/var/lib/pgbk' '--identity' '/k/id' '--known-hosts' '/k/kh' '--remote-pgbk' '/usr/bin/node /opt/pgbk/cli.js' '--compression' 'zstd' 'main' %p`,
  );
  assert.equal(d, {
    dbPgbk: ['/usr/bin/node', '/opt/pgbk/cli.js'],
    from: 'ssh://root@127.0.0.1:2222/var/lib/pgbk',
    server: 'main',
    identityFile: '/k/id',
    knownHosts: '/k/kh',
    remotePgbk: '/usr/bin/node /opt/pgbk/cli.js',
  });
  assert.equal(deriveFetchFromArchiveCommand('pgbk wal-push --to=ssh://b@h/c main %p'), { dbPgbk: ['pgbk'], from: 'ssh://b@h/c', server: 'main' });
  assert.match(String(deriveFetchFromArchiveCommand('pgbk wal-push main %p')), /local catalog/);
  assert.match(String(deriveFetchFromArchiveCommand('cp %p /archive/%f')), /not a pgbk wal-push/);
  assert.match(String(deriveFetchFromArchiveCommand('pgbk wal-push --to ssh://b@h/c --bogus main %p')), /unknown wal-push option --bogus/);
  assert.match(String(deriveFetchFromArchiveCommand('test -f x && pgbk wal-push --to ssh://b@h/c main %p')), /simple command/);
});

test('deriveFetchFromArchiveCommand: the shell fast path wal-push --print-archive-command prints', () => {
  const cmd = fastPathArchiveCommand({
    socket: '/tmp/pgbk-0/walpush-abc.sock',
    markers: '/tmp/pgbk-0/walpush-abc.acked',
    fallback: ['/usr/bin/node', '/opt/pgbk/cli.js', 'wal-push', '--to', 'ssh://b@h:2222/cat', '--identity', '/k/id', 'main'],
    waitSeconds: 5,
  });
  assert.equal(deriveFetchFromArchiveCommand(cmd), {
    dbPgbk: ['/usr/bin/node', '/opt/pgbk/cli.js'],
    from: 'ssh://b@h:2222/cat',
    server: 'main',
    identityFile: '/k/id',
  });
});

test.run();
