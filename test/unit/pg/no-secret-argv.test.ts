/**
 * Issue 9 item 7: no secret on a command line. Every argv pgbk builds for a PostgreSQL client
 * program (pg_basebackup, pg_receivewal, psql over SSH) is checked for the secret; a password goes
 * to the child's environment, sslpassword (no environment variable in libpq) is refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PassThrough } from 'node:stream';
import { PsqlSession } from '../../../src/backup/ssh/psql-session.js';
import { PgbkError } from '../../../src/errors.js';
import { baseBackupCommand } from '../../../src/pg/basebackup.js';
import { clientToolConninfo } from '../../../src/pg/conninfo.js';
import { receiveWalCommand } from '../../../src/pg/receivewal.js';
import type { ExecProcess, Transport } from '../../../src/transport/transport.js';

const SECRET = 'Pa55-w0rd!x';
const WITH_PASSWORD = [
  `host=db1 user=pgbk password=${SECRET} dbname=postgres`,
  `host=db1 user=pgbk password='${SECRET}' sslmode=require`,
  `postgresql://pgbk:${encodeURIComponent(SECRET)}@db1:5432/postgres`,
  `postgresql://pgbk@db1/postgres?password=${encodeURIComponent(SECRET)}`,
];
const WITH_SSLPASSWORD = [
  `host=db1 user=pgbk sslkey=/k sslpassword=${SECRET}`,
  `postgresql://pgbk@db1/postgres?sslkey=/k&sslpassword=${encodeURIComponent(SECRET)}`,
  `postgresql://pgbk@db1/postgres?ssl%70assword=${encodeURIComponent(SECRET)}`,
];

function bb(conninfo: string): { args: string[]; env: NodeJS.ProcessEnv } {
  return baseBackupCommand({ conninfo, label: 'l', fastCheckpoint: true, compression: 'zstd', pgVersion: 150000 }, '/c/b/.staging', 15);
}

function rw(conninfo: string): { args: string[]; env: NodeJS.ProcessEnv } {
  return receiveWalCommand({ binary: 'pg_receivewal', conninfo, directory: '/c/s', slot: 'pgbk_main' });
}

function assertConfigError(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.is((err as PgbkError).code, 'CONFIG');
    assert.match((err as PgbkError).message, re);
    assert.not.ok((err as PgbkError).message.includes(SECRET), 'the error echoes the secret');
    return;
  }
  assert.unreachable('should have been refused');
}

for (const conninfo of WITH_PASSWORD) {
  test(`password in ${conninfo.replace(/:\/\/.*@/, '://…@')}: pg_basebackup and pg_receivewal get it in PGPASSWORD only`, () => {
    for (const { args, env } of [bb(conninfo), rw(conninfo)]) {
      assert.not.ok(args.join('\0').includes(SECRET), `argv holds the secret: ${args.join(' ')}`);
      assert.not.ok(args.join('\0').includes(encodeURIComponent(SECRET)));
      assert.is(env['PGPASSWORD'], SECRET);
      const dbname = args.find((a) => a.startsWith('--dbname='));
      assert.ok(dbname?.includes('host=db1') && !dbname.includes('password'), dbname);
    }
  });
}

for (const conninfo of WITH_SSLPASSWORD) {
  test(`sslpassword in ${conninfo}: refused for every client program`, () => {
    assertConfigError(() => clientToolConninfo(conninfo), /sslpassword cannot be passed/);
    assertConfigError(() => bb(conninfo), /sslpassword/);
    assertConfigError(() => rw(conninfo), /sslpassword/);
  });
}

test('no secret: the argv carries the conninfo and the environment adds nothing', () => {
  const { dbname, env } = clientToolConninfo('host=db1 user=pgbk dbname=postgres');
  assert.is(dbname, 'host=db1 user=pgbk dbname=postgres');
  assert.equal(env, {});
});

/** A transport that records what it was asked to run and never runs anything. */
function recordingTransport(): Transport & { readonly runs: string[][] } {
  const runs: string[][] = [];
  const t = {
    description: 'ssh postgres@db1',
    runs,
    exec(argv: readonly string[]): ExecProcess {
      runs.push([...argv]);
      const proc = {
        stdin: new PassThrough(),
        stdout: new PassThrough(),
        stderr: new PassThrough(),
        done: new Promise(() => undefined),
        kill: () => undefined,
      };
      return proc as unknown as ExecProcess;
    },
  };
  return t as unknown as Transport & { readonly runs: string[][] };
}

test('psql over SSH: a conninfo with a password or sslpassword is refused before anything runs', () => {
  for (const conninfo of [...WITH_PASSWORD, ...WITH_SSLPASSWORD]) {
    const t = recordingTransport();
    assertConfigError(() => new PsqlSession(t, ['-d', conninfo], 'main'), /ssh\.psqlConnection contains (ssl)?password/);
    assert.equal(t.runs, []);
  }
  const t = recordingTransport();
  new PsqlSession(t, ['-d', 'host=/var/run/postgresql dbname=postgres'], 'main');
  assert.equal(t.runs.length, 1);
  assert.ok(t.runs[0]!.includes('host=/var/run/postgresql dbname=postgres'));
});

test.run();
