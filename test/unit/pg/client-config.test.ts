import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toClientConfig } from '../../../src/pg/client-config.js';

test('toClientConfig: keywords map to pg fields', () => {
  const c = toClientConfig('host=/tmp/s port=6543 user=u dbname=d application_name=pgbk connect_timeout=3 sslmode=disable', {});
  assert.is(c.host, '/tmp/s');
  assert.is(c.port, 6543);
  assert.is(c.user, 'u');
  assert.is(c.database, 'd');
  assert.is(c.application_name, 'pgbk');
  assert.is(c.connectionTimeoutMillis, 3000);
  assert.is(c.ssl, false);
});

test('toClientConfig: PG* environment fills what the string leaves out; the string wins', () => {
  const env = { PGHOST: 'envhost', PGPORT: '7000', PGUSER: 'envuser', PGDATABASE: 'envdb', PGPASSWORD: 'envpw' };
  const c = toClientConfig('port=7001', env);
  assert.is(c.host, 'envhost');
  assert.is(c.port, 7001);
  assert.is(c.user, 'envuser');
  assert.is(c.database, 'envdb');
  assert.is(c.password, 'envpw');
  assert.is(toClientConfig('password=mine', env).password, 'mine');
});

test('toClientConfig: dbname defaults to the user, like libpq', () => {
  assert.is(toClientConfig('host=h user=alice', {}).database, 'alice');
});

test('toClientConfig: without a password, a lookup function reads the passfile when asked', async () => {
  const c = toClientConfig('host=h user=u passfile=/nonexistent/pgpass', {});
  assert.type(c.password, 'function');
  const fn = c.password as () => string | Promise<string>;
  let message = '';
  try {
    await fn();
  } catch (err) {
    message = (err as Error).message;
  }
  assert.match(message, /none in PGPASSWORD or the password file \/nonexistent\/pgpass/);
});

test('toClientConfig: sslmode require/verify-full', () => {
  const req = toClientConfig('host=h sslmode=require', {});
  assert.equal(req.ssl, { rejectUnauthorized: false });
  const full = toClientConfig('host=h sslmode=verify-full sslrootcert=/nonexistent/root.crt', {});
  assert.equal(full.ssl, { rejectUnauthorized: true });
});

test('toClientConfig: bad input is a CONFIG error naming the problem', () => {
  assert.throws(() => toClientConfig('host=h port=99999', {}), /invalid port "99999"/);
  assert.throws(() => toClientConfig('host=a,b', {}), /host lists/);
  assert.throws(() => toClientConfig('service=prod', {}), /service= is not supported/);
  assert.throws(() => toClientConfig('host=h sslmode=maybe', {}), /invalid sslmode "maybe"/);
  assert.throws(() => toClientConfig('host=h connect_timeout=soon', {}), /invalid connect_timeout/);
});

test('toClientConfig: URI form', () => {
  const c = toClientConfig('postgresql://u:pw@db1:5433/app', {});
  assert.is(c.host, 'db1');
  assert.is(c.port, 5433);
  assert.is(c.password, 'pw');
  assert.is(c.database, 'app');
});

test.run();
