import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hasPassword, redactConninfo } from '../../../src/config/conninfo.js';

interface Case {
  readonly input: string;
  readonly password: boolean;
  readonly redacted: string;
}

const cases: readonly Case[] = [
  { input: 'host=db1 port=5432 user=pgbk dbname=postgres', password: false, redacted: 'host=db1 port=5432 user=pgbk dbname=postgres' },
  { input: 'host=db1 password=hunter2 user=x', password: true, redacted: 'host=db1 password=*** user=x' },
  { input: 'password=hunter2', password: true, redacted: 'password=***' },
  { input: "host=db1 password = 'two words\\'q' user=x", password: true, redacted: 'host=db1 password = *** user=x' },
  { input: 'host=db1 passfile=/etc/pgbk/pgpass', password: false, redacted: 'host=db1 passfile=/etc/pgbk/pgpass' },
  { input: 'postgresql://pgbk:hunter2@db1:5432/postgres', password: true, redacted: 'postgresql://pgbk:***@db1:5432/postgres' },
  { input: 'postgres://pgbk@db1/postgres', password: false, redacted: 'postgres://pgbk@db1/postgres' },
  { input: 'postgresql://pgbk@[::1]:5432/postgres?sslmode=require', password: false, redacted: 'postgresql://pgbk@[::1]:5432/postgres?sslmode=require' },
  {
    input: 'postgresql://pgbk@db1/postgres?sslmode=require&password=hunter2&application_name=pgbk',
    password: true,
    redacted: 'postgresql://pgbk@db1/postgres?sslmode=require&password=***&application_name=pgbk',
  },
  { input: 'postgresql://pgbk:***@db1/postgres', password: true, redacted: 'postgresql://pgbk:***@db1/postgres' },
  { input: 'host=db1 sslkey=/k sslpassword=hunter2', password: true, redacted: 'host=db1 sslkey=/k sslpassword=*** user=x'.replace(' user=x', '') },
  {
    input: 'postgresql://pgbk@db1/postgres?sslpassword=hunter2&sslmode=require',
    password: true,
    redacted: 'postgresql://pgbk@db1/postgres?sslpassword=***&sslmode=require',
  },
  {
    input: 'pg_basebackup failed for "host=db1 password=hunter2": timeout',
    password: true,
    redacted: 'pg_basebackup failed for "host=db1 password=***": timeout',
  },
];

for (const c of cases) {
  test(`conninfo ${JSON.stringify(c.input)}`, () => {
    assert.is(hasPassword(c.input), c.password);
    assert.is(redactConninfo(c.input), c.redacted);
    assert.not.ok(redactConninfo(c.input).includes('hunter2'));
  });
}

test('redactConninfo is idempotent', () => {
  for (const c of cases) assert.is(redactConninfo(redactConninfo(c.input)), c.redacted);
});

test.run();
