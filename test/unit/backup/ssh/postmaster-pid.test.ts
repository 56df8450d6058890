import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePostmasterPid } from '../../../../src/backup/ssh/postmaster-pid.js';

const pid = (port: string, socketDir: string, listen: string): string =>
  ['12345', '/srv/pg/15/data', '1733130000', port, socketDir, listen, '  5432001    123456', 'ready   ', ''].join('\n');

test('postmaster.pid: the socket directory and port of the running server', () => {
  assert.equal(parsePostmasterPid(pid('5433', '/run/pg-alt', 'localhost')), { host: '/run/pg-alt', port: '5433' });
});

test('postmaster.pid without unix sockets: the listen address, wildcards mapped to loopback', () => {
  assert.equal(parsePostmasterPid(pid('6000', '', '*')), { host: '127.0.0.1', port: '6000' });
  assert.equal(parsePostmasterPid(pid('6000', '', '0.0.0.0')), { host: '127.0.0.1', port: '6000' });
  assert.equal(parsePostmasterPid(pid('6000', '', '::')), { host: '::1', port: '6000' });
  assert.equal(parsePostmasterPid(pid('6000', '', '10.1.2.3')), { host: '10.1.2.3', port: '6000' });
});

test('postmaster.pid that tells nothing usable: undefined (psql defaults apply)', () => {
  assert.is(parsePostmasterPid(''), undefined);
  assert.is(parsePostmasterPid('12345\n/data\n'), undefined);
  assert.is(parsePostmasterPid(pid('not-a-port', '/tmp', '*')), undefined);
  assert.is(parsePostmasterPid(pid('5432', '', '')), undefined);
});

test.run();
