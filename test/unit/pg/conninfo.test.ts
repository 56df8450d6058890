import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import { formatConninfo, parseConninfo, displayConninfo, splitPassword } from '../../../src/pg/conninfo.js';

const cases: readonly (readonly [string, Record<string, string>])[] = [
  ['host=db1 port=5432 user=pgbk dbname=postgres', { host: 'db1', port: '5432', user: 'pgbk', dbname: 'postgres' }],
  ['  host = db1   port= 5433\tuser =x ', { host: 'db1', port: '5433', user: 'x' }],
  ["password='a b\\'c\\\\d'", { password: "a b'c\\d" }],
  ["application_name=''", { application_name: '' }],
  ['password=a\\ b', { password: 'a b' }], // backslash escapes in bare values too
  ['host=/tmp/sock', { host: '/tmp/sock' }],
  ['', {}],
  ['postgresql://', {}],
  [
    'postgresql://u:p%40ss@db1:5433/app?sslmode=require&application_name=pgbk',
    {
      user: 'u',
      password: 'p@ss',
      host: 'db1',
      port: '5433',
      dbname: 'app',
      sslmode: 'require',
      application_name: 'pgbk',
    },
  ],
  ['postgres://[::1]:5432/db', { host: '::1', port: '5432', dbname: 'db' }],
  ['postgresql:///db?host=/var/run/postgresql', { dbname: 'db', host: '/var/run/postgresql' }],
];

test('parseConninfo: keyword/value and URI forms', () => {
  for (const [input, expected] of cases) {
    assert.equal(parseConninfo(input), expected, input);
  }
});

test('parseConninfo: SQL-style doubled quotes are not an escape (libpq rejects them too)', () => {
  // "password='it''s'" = password 'it' followed by a keyword "'s'" with no '='.
  assert.throws(() => parseConninfo("password='it''s'"), /missing "="/);
});

function errorOf(fn: () => unknown): PgbkError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PgbkError) return err;
    throw err;
  }
  throw new Error('expected a PgbkError');
}

test('parseConninfo: errors name the problem', () => {
  assert.match(errorOf(() => parseConninfo('host db1')).message, /missing "=" after "host"/);
  assert.match(errorOf(() => parseConninfo("password='abc")).message, /unterminated quoted value for "password"/);
  assert.match(errorOf(() => parseConninfo('hots=db1')).message, /invalid connection option "hots"/);
  assert.match(errorOf(() => parseConninfo('postgresql://a:1,b:2/db')).message, /malformed/);
  assert.is(errorOf(() => parseConninfo('host db1')).code, 'CONFIG');
});

test('formatConninfo: round-trips through parseConninfo', () => {
  const info = { host: '/tmp/x y', password: "p'w\\d", dbname: 'postgres', application_name: '' };
  const text = formatConninfo(info, { keepPassword: true });
  assert.equal(parseConninfo(text), info);
  assert.is(formatConninfo({ host: 'db1', port: '5432' }), 'host=db1 port=5432');
});

test('formatConninfo / displayConninfo: never show the password', () => {
  assert.is(formatConninfo({ host: 'db1', password: 'secret' }), 'host=db1 password=********');
  const redacted = displayConninfo("host=db1 password='s3cr et' user=u");
  assert.not.match(redacted, /s3cr/);
  assert.match(redacted, /host=db1/);
  assert.not.match(displayConninfo('postgresql://u:topsecret@db1/x'), /topsecret/);
  assert.not.match(displayConninfo("password='unterminated"), /unterminated/);
});

test('splitPassword: removes the password and returns it', () => {
  const { info, password } = splitPassword(parseConninfo('host=db1 password=pw user=u'));
  assert.equal(info, { host: 'db1', user: 'u' });
  assert.is(password, 'pw');
  assert.is(splitPassword(parseConninfo('host=db1')).password, undefined);
});

test.run();
