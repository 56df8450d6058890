// test-lane: light — password handling (env, passfile, refusal); no time bound
/**
 * Issue 9 item 7: a password-protected PostgreSQL (scram-sha-256) is backed up with the password in
 * pgbk's environment (PGPASSWORD) or a password file (PGPASSFILE) — never from the config, which
 * refuses password and sslpassword — and no command line pgbk starts holds the secret. The
 * pg_basebackup pgbk runs is a wrapper (PGBK_PG_BINDIR) that records its own /proc/PID/cmdline
 * (what `ps` shows every local user) and its parent's, then execs the real program.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeWorld, type World } from '../../support/pgbk.js';
import { PG_BINDIR } from '../../support/postgres.js';

const SECRET = 'S3cr3t-pw-for-pgbk';
let world: World;
let bindir: string;
let argvLog: string;
let config: string;

test.before(async () => {
  world = await makeWorld();
  const c = world.cluster;
  await c.sql(`CREATE ROLE pgbk LOGIN REPLICATION SUPERUSER PASSWORD '${SECRET}'`);
  const hba = path.join(c.pgdata, 'pg_hba.conf');
  const scram = [
    'local all pgbk scram-sha-256',
    'local replication pgbk scram-sha-256',
    'host all pgbk 127.0.0.1/32 scram-sha-256',
    'host replication pgbk 127.0.0.1/32 scram-sha-256',
  ];
  await writeFile(hba, `${scram.join('\n')}\n${await readFile(hba, 'utf8')}`);
  await c.sql('SELECT pg_reload_conf()');

  bindir = path.join(world.root, 'bin');
  argvLog = path.join(world.root, 'argv.log');
  await mkdir(bindir);
  const wrapper = [
    '#!/bin/sh',
    `{ tr '\\0' ' ' < /proc/$$/cmdline; echo; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; [ -n "$PGPASSWORD" ] && echo "env: PGPASSWORD set"; } >> ${argvLog}`,
    `exec ${path.join(PG_BINDIR, 'pg_basebackup')} "$@"`,
    '',
  ].join('\n');
  await writeFile(path.join(bindir, 'pg_basebackup'), wrapper, { mode: 0o755 });

  config = world.configPath;
  await writeFile(
    config,
    `catalog: ${world.catalog}\nservers:\n  main:\n    connection: "host=${c.socketDir} port=${c.port} user=pgbk dbname=postgres"\n    retention: { redundancy: 5 }\n`,
  );
});

test.after(async () => {
  await world?.destroy();
});

const NO_PASSFILE = (): string => path.join(world.root, 'no-such-pgpass');

test('the server really wants a password: without one the backup fails', async () => {
  const r = await world.pgbk(['backup', 'main'], { env: { PGBK_PG_BINDIR: bindir, PGPASSFILE: NO_PASSFILE(), PGPASSWORD: '' } });
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /password/i);
});

test('PGPASSWORD in the environment: backup DONE; no command line holds the password', async () => {
  await writeFile(argvLog, '');
  const r = await world.pgbk(['backup', 'main'], { env: { PGBK_PG_BINDIR: bindir, PGPASSFILE: NO_PASSFILE(), PGPASSWORD: SECRET } });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /DONE|WAITING_FOR_WAL/);
  const seen = await readFile(argvLog, 'utf8');
  assert.match(seen, /pg_basebackup --dbname=host=\S+ port=\d+ user=pgbk dbname=postgres /, seen);
  assert.match(seen, /env: PGPASSWORD set/);
  assert.not.ok(seen.includes(SECRET), `a command line holds the secret:\n${seen}`);
  assert.not.ok(r.stderr.includes(SECRET) || r.stdout.includes(SECRET));
});

test('a password file (PGPASSFILE): backup DONE; the password is on no command line either', async () => {
  await writeFile(argvLog, '');
  const passfile = path.join(world.root, 'pgpass');
  await writeFile(passfile, `*:*:*:pgbk:${SECRET}\n`, { mode: 0o600 });
  await chmod(passfile, 0o600);
  const r = await world.pgbk(['backup', 'main'], { env: { PGBK_PG_BINDIR: bindir, PGPASSFILE: passfile, PGPASSWORD: '' } });
  assert.is(r.code, 0, r.stderr);
  const seen = await readFile(argvLog, 'utf8');
  assert.match(seen, /pg_basebackup --dbname=/, seen);
  assert.not.ok(seen.includes(SECRET), `a command line holds the secret:\n${seen}`);
});

test('sslpassword in the config is refused with file:line and key path, before anything runs', async () => {
  await writeFile(argvLog, '');
  const bad = path.join(world.root, 'bad.yaml');
  await writeFile(
    bad,
    `catalog: ${world.catalog}\nservers:\n  main:\n    connection: "host=${world.cluster.socketDir} port=${world.cluster.port} user=pgbk sslpassword=${SECRET}"\n    retention: { redundancy: 5 }\n`,
  );
  const r = await world.pgbk(['--config', bad, 'backup', 'main'], { env: { PGBK_PG_BINDIR: bindir } });
  assert.is.not(r.code, 0);
  assert.match(r.stderr, `${bad}:4:17: servers.main.connection: contains sslpassword`);
  assert.not.ok(r.stderr.includes(SECRET), r.stderr);
  assert.is(existsSync(argvLog) ? await readFile(argvLog, 'utf8') : '', '', 'pg_basebackup must not have run');
});

test.run();
