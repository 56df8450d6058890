import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gatherStartFacts, renderStartLines, settingsReport, startCommand, type StartFacts } from '../../../src/restore/start-command.js';

const FACTS: StartFacts = {
  pgdata: '/srv/restore/main',
  postgresqlConf: "port = 5433\nunix_socket_directories = '/var/run/postgresql'\narchive_mode = on\n",
  autoConf: "archive_command = 'pgbk wal-push main %p'\nrestore_command = 'pgbk wal-fetch main %f %p'\n",
  freePort: 54329,
  owner: 'postgres',
  runAs: 'runuser',
  pgCtl: '/usr/lib/postgresql/15/bin/pg_ctl',
  archiving: 'keep',
};

test('settings: restore_command set, port and socket kept, archive_mode kept with its meaning', () => {
  const s = settingsReport(FACTS);
  assert.equal(
    s.map((x) => `${x.name} ${x.change} ${x.value ?? '-'} ${x.source}`),
    [
      'restore_command set pgbk wal-fetch main %f %p postgresql.auto.conf',
      'port kept 5433 postgresql.conf',
      'unix_socket_directories kept /var/run/postgresql postgresql.conf',
      'archive_mode kept on postgresql.conf',
    ],
  );
  assert.match(
    s[3]!.note,
    /^on \(kept, restore --keep-archiving\): once promoted, the copy runs archive_command \(pgbk wal-push main %p\) .*as the server did/,
  );
});

test("default: archive_command set to 'false', and what to do for a copy that replaces the server", () => {
  const s = settingsReport({ ...FACTS, archiving: 'refuse', autoConf: `${FACTS.autoConf}archive_command = 'false'\n` });
  const cmd = s.find((x) => x.name === 'archive_command');
  assert.is(cmd?.change, 'set');
  assert.is(cmd?.value, 'false');
  assert.match(cmd?.note ?? '', /^'false' \(the default\): once promoted, the copy keeps its WAL in pg_wal .*--keep-archiving/);
  assert.is(
    s.find((x) => x.name === 'archive_mode'),
    undefined,
  );
});

test('s3 catalog: restore_command says whose credentials wal-fetch needs, and warns when the owner has no credentials file', () => {
  const s3 = {
    url: 's3://backups/prod',
    ownerCredentialsFile: '/var/lib/postgresql/.aws/credentials',
    usedHere: 'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment of OS user root',
  };
  const missing = settingsReport({ ...FACTS, s3: { ...s3, ownerHasCredentialsFile: false } })[0]!.note;
  assert.match(missing, /reads s3:\/\/backups\/prod as OS user postgres with the environment PostgreSQL is started with/);
  assert.match(missing, /\/var\/lib\/postgresql\/\.aws\/credentials does not exist, so unless PostgreSQL's environment carries them, recovery stops/);
  assert.match(missing, /this restore used AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY in the environment of OS user root\)$/);
  const present = settingsReport({ ...FACTS, s3: { ...s3, profile: 'pgbk', ownerHasCredentialsFile: true } })[0]!.note;
  assert.match(present, /or \/var\/lib\/postgresql\/\.aws\/credentials \(profile pgbk\)\)$/);
  assert.not.match(present, /does not exist/);
  // A local catalog: nothing about credentials.
  assert.not.match(settingsReport(FACTS)[0]!.note, /credentials/);
});

test("gatherStartFacts: the owner's ~/.aws/credentials is looked up in its home (from /etc/passwd)", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-start-facts-'));
  try {
    const facts = await gatherStartFacts(dir, 'refuse', { url: 's3://b/p' });
    const me = os.userInfo();
    assert.is(facts.s3?.ownerCredentialsFile, path.join(me.homedir, '.aws', 'credentials'));
    assert.is(facts.s3?.url, 's3://b/p');
    const fs = await import('node:fs');
    const either = fs.existsSync(path.join(me.homedir, '.aws', 'credentials')) || fs.existsSync(path.join(me.homedir, '.aws', 'config'));
    assert.is(facts.s3?.ownerHasCredentialsFile, either);
    assert.is((await gatherStartFacts(dir, 'refuse')).s3, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('--no-archive: archive_mode set off, said so', () => {
  const s = settingsReport({ ...FACTS, archiving: 'off', autoConf: `${FACTS.autoConf}archive_mode = 'off'\n` });
  const mode = s.find((x) => x.name === 'archive_mode');
  assert.is(mode?.change, 'set');
  assert.is(mode?.value, 'off');
  assert.match(mode?.note ?? '', /^off \(restore --no-archive\)/);
});

test('start command: pg_ctl as the owner, a free port, the socket in the data directory', () => {
  const c = startCommand(FACTS);
  assert.equal(c.argv, [
    'runuser',
    '-u',
    'postgres',
    '--',
    '/usr/lib/postgresql/15/bin/pg_ctl',
    '-D',
    '/srv/restore/main',
    '-o',
    '-p 54329 -k /srv/restore/main',
    'start',
  ]);
  assert.is(c.text, "runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /srv/restore/main -o '-p 54329 -k /srv/restore/main' start");
  assert.is(startCommand({ ...FACTS, runAs: 'self' }).argv[0], '/usr/lib/postgresql/15/bin/pg_ctl');
  // A data directory with a space: quoted for the outer shell and, inside -o, for pg_ctl's shell.
  const spaced = startCommand({ ...FACTS, pgdata: '/srv/my restore' });
  assert.is(spaced.argv[8], "-p 54329 -k '/srv/my restore'");
  // Too long for a unix socket path: /tmp.
  const long = startCommand({ ...FACTS, pgdata: `/srv/${'x'.repeat(120)}` });
  assert.is(long.socketDir, '/tmp');
});

test('rendered lines', () => {
  const lines = renderStartLines(settingsReport(FACTS), startCommand(FACTS));
  assert.match(lines[0]!, /^ {2}settings: {2}restore_command: set with the recovery target/);
  assert.match(lines[1]!, /^ {13}port: kept from the backup \(5433\)/);
  assert.match(lines[4]!, /^ {2}start: {5}runuser -u postgres -- /);
});

test.run();
