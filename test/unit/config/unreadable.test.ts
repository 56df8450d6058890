/** A config file the OS refuses: the message names the OS user refused and how to grant it. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unreadableConfig } from '../../../src/config/discover.js';

test('EACCES names the OS user and a grant; ENOENT and others stay short', () => {
  const denied = unreadableConfig('config file', '/etc/pgbk/pgbk.yaml', 'EACCES', 'postgres');
  assert.is(denied.message, 'config file /etc/pgbk/pgbk.yaml cannot be read by OS user postgres (EACCES)');
  assert.match(denied.hint ?? '', 'chmod 0640 /etc/pgbk/pgbk.yaml, with postgres in GROUP');
  assert.equal(unreadableConfig('--config', '/x.yaml', 'ENOENT', 'postgres'), { message: '--config /x.yaml does not exist' });
  assert.equal(unreadableConfig('--config', '/x.yaml', 'EISDIR', 'postgres'), { message: '--config /x.yaml cannot be read (EISDIR)' });
});

test.run();
