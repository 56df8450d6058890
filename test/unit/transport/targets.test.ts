import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { splitRemoteArgs } from '../../../src/restore/remote.js';
import { optionArgs, optionsFrom, parseTarget, workerKey } from '../../../src/wal-push/target.js';

test('wal-push --to: ssh://user@host[:port]/catalog', () => {
  assert.equal(parseTarget('ssh://barman@backup:2222/var/lib/pgbk'), { user: 'barman', host: 'backup', port: 2222, catalog: '/var/lib/pgbk' });
  assert.equal(parseTarget('ssh://u@[::1]/c'), { user: 'u', host: '::1', port: 22, catalog: '/c' });
  assert.throws(() => parseTarget('backup:/var/lib/pgbk'), /expected ssh:\/\/USER@HOST/);
  assert.throws(() => parseTarget('ssh://backup/var'), /expected/);
});

test('worker options round-trip and the worker key depends on target and pgdata', () => {
  const o = optionsFrom({ to: 'ssh://u@h:22/c', identity: '/k', 'known-hosts': '/kh', 'remote-pgbk': 'node /x/cli.js', compression: 'none' }, 'main');
  const back = optionsFrom(Object.fromEntries(optionArgs(o).flatMap((arg, i, arr) => (i % 2 === 0 ? [[arg.slice(2), arr[i + 1]!] as const] : []))), 'main');
  assert.equal(back, o);
  assert.is.not(workerKey(o, '/pg1'), workerKey(o, '/pg2'));
  assert.is(workerKey(o, '/pg1'), workerKey(back, '/pg1'));
});

test('restore --remote arguments are split off the local restore arguments', () => {
  const r = splitRemoteArgs(['main', '--target-dir', '/d', '--remote', 'postgres@db1:2222', '--identity', '/k', '--known-hosts', '/kh']);
  assert.equal(r.rest, ['main', '--target-dir', '/d']);
  assert.equal(r.remote, { user: 'postgres', host: 'db1', port: 2222, identityFile: '/k', knownHosts: '/kh' });
  assert.is(splitRemoteArgs(['main', '--target-dir', '/d']).remote, undefined);
  assert.throws(() => splitRemoteArgs(['main', '--identity', '/k']), /go with --remote/);
  assert.throws(() => splitRemoteArgs(['main', '--remote', 'db1']), /USER@HOST/);
});

test.run();
