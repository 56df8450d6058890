import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ArchiveSettings, archiverNeverArchives, isRefusingArchiveCommand } from '../../../src/pg/archive-settings.js';
import { refuseBackupWithoutArchiving } from '../../../src/backup/archiving-preflight.js';
import { PgbkError } from '../../../src/errors.js';
import { config } from '../plan/fixtures.js';

const on = (o: Partial<ArchiveSettings> = {}): ArchiveSettings => ({
  archiveMode: 'on',
  archiveCommand: 'pgbk wal-push main %p',
  archiveLibrary: '',
  inRecovery: false,
  ...o,
});

test("refusing commands: restore's 'false' and the program's paths, not a command that merely fails sometimes", () => {
  for (const c of ['false', ' false ', '/bin/false', '/usr/bin/false']) assert.ok(isRefusingArchiveCommand(c), c);
  for (const c of ['exit 1', 'false && true', 'pgbk wal-push main %p', '']) assert.not.ok(isRefusingArchiveCommand(c), c);
});

test('the archiver never archives: a refusing or empty command on a server that archives', () => {
  assert.match(
    archiverNeverArchives(on({ archiveCommand: 'false' })) ?? '',
    /^archive_command is 'false': the server archives no WAL \(pgbk restore writes 'false' into a restored copy/,
  );
  assert.is(archiverNeverArchives(on({ archiveCommand: '' })), 'archive_command is empty: the server archives no WAL');
  assert.is(archiverNeverArchives(on({ archiveCommand: '(disabled)' })), 'archive_command is empty: the server archives no WAL');
  assert.ok(archiverNeverArchives(on({ archiveMode: 'always', inRecovery: true, archiveCommand: 'false' })) !== undefined);
  assert.is(archiverNeverArchives(on()), undefined);
  // Not this server's job, or another mechanism archives: nothing to say here (check says the rest).
  assert.is(archiverNeverArchives(on({ archiveMode: 'off', archiveCommand: 'false' })), undefined);
  assert.is(archiverNeverArchives(on({ inRecovery: true, archiveCommand: 'false' })), undefined);
  assert.is(archiverNeverArchives(on({ archiveLibrary: 'basic_archive', archiveCommand: 'false' })), undefined);
});

test('a base backup refuses on a pushing server whose archiver never archives, with the hint; never for wal method stream', () => {
  const push = config();
  assert.not.throws(() => refuseBackupWithoutArchiving(push, on()));
  try {
    refuseBackupWithoutArchiving(push, on({ archiveCommand: 'false' }));
    assert.unreachable('should refuse');
  } catch (err) {
    assert.instance(err, PgbkError);
    const e = err as PgbkError;
    assert.is(e.server, 'main');
    assert.match(e.message, /^base backup refused: archive_command is 'false'.*, so the backup's WAL would never reach the catalog$/);
    assert.match(e.hint ?? '', /^if this cluster now replaces the server, remove the archive_command and archive_library lines/);
  }
  try {
    refuseBackupWithoutArchiving(push, on({ archiveCommand: '' }));
    assert.unreachable('should refuse');
  } catch (err) {
    assert.match((err as PgbkError).hint ?? '', /^set archive_command = 'pgbk wal-push main %p' and reload PostgreSQL/);
  }
  const stream = { ...push, wal: { ...push.wal, method: 'stream' as const } };
  assert.not.throws(() => refuseBackupWithoutArchiving(stream, on({ archiveCommand: 'false' })));
});

test.run();
