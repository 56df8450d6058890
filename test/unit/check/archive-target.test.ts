import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArchiveTarget } from '../../../src/check/archive-target.js';
import { fastPathArchiveCommand } from '../../../src/wal-push/fast-path.js';

test('plain local wal-push, with --config before or after the command word', () => {
  assert.equal(parseArchiveTarget('pgbk wal-push main %p'), { server: 'main' });
  assert.equal(parseArchiveTarget("'/usr/bin/node' '/x/cli.js' '--config' '/etc/pgbk/pgbk.yaml' 'wal-push' 'other' %p"), {
    server: 'other',
    config: '/etc/pgbk/pgbk.yaml',
  });
  assert.equal(parseArchiveTarget('pgbk wal-push -c /a.yaml db1 %p'), { server: 'db1', config: '/a.yaml' });
  assert.equal(parseArchiveTarget('pgbk wal-push --config=/a.yaml db1 %p'), { server: 'db1', config: '/a.yaml' });
});

test('wal-push over SSH: the catalog path of --to', () => {
  assert.equal(parseArchiveTarget('pgbk wal-push --to ssh://pgbk@backup:2222/var/lib/pgbk --identity /k main %p'), {
    server: 'main',
    sshCatalog: '/var/lib/pgbk',
  });
});

test('the shell fast path wal-push --print-archive-command prints', () => {
  const cmd = fastPathArchiveCommand({
    markers: '/run/pgbk/m',
    socket: '/run/pgbk/s.sock',
    waitSeconds: 1,
    fallback: ['pgbk', 'wal-push', '--to', 'ssh://u@h/srv/cat', 'db2'],
  });
  assert.equal(parseArchiveTarget(cmd), { server: 'db2', sshCatalog: '/srv/cat', fastPathSocket: '/run/pgbk/s.sock' });
});

test('the local fast path (--print-archive-command without --to): the catalog of --config, --worker skipped', () => {
  const cmd = fastPathArchiveCommand({
    markers: '/run/pgbk/m',
    socket: '/run/pgbk/s.sock',
    waitSeconds: 5,
    fallback: ['/usr/bin/node', '/x/cli.js', 'wal-push', '--config', '/etc/pgbk/pgbk.yaml', '--worker', 'db3'],
  });
  assert.equal(parseArchiveTarget(cmd), { server: 'db3', config: '/etc/pgbk/pgbk.yaml', fastPathSocket: '/run/pgbk/s.sock' });
  // A socket path that needs quoting (and doubled %) comes back as the path.
  const quoted = fastPathArchiveCommand({
    markers: '/run/pg bk/m',
    socket: "/run/pg bk/it's 100%.sock",
    waitSeconds: 5,
    fallback: ['pgbk', 'wal-push', '--config', '/etc/pgbk/pgbk.yaml', '--worker', 'db3'],
  });
  assert.is(parseArchiveTarget(quoted)?.fastPathSocket, "/run/pg bk/it's 100%.sock");
});

test('not a pgbk wal-push command: undefined', () => {
  assert.is(parseArchiveTarget('test ! -f /x/%f && cp %p /x/%f'), undefined);
  assert.is(parseArchiveTarget('cp %p /x/%f'), undefined);
  assert.is(parseArchiveTarget('pgbk wal-push main'), undefined);
  assert.is(parseArchiveTarget(''), undefined);
});

test.run();
