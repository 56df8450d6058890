/**
 * A base backup of a server whose WAL is pushed by its own archiver is complete only once its end
 * segment reaches the catalog. When the archiver can never archive (pg/archive-settings.ts: e.g. the
 * `archive_command = 'false'` that pgbk restore writes into a copy), the backup would copy the whole
 * cluster, wait backup.archiveTimeout for that segment and stay WAITING_FOR_WAL for good: refuse
 * before anything is written instead, with check's hint.
 */

import type { ServerConfig } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { type ArchiveSettings, archiverNeverArchives, isRefusingArchiveCommand, REFUSING_ARCHIVE_COMMAND_HINT } from '../pg/archive-settings.js';

/** Throws PG when `server` pushes its WAL (wal.method push) and its archiver never archives. */
export function refuseBackupWithoutArchiving(server: ServerConfig, settings: ArchiveSettings): void {
  // With wal.method stream the backup's WAL comes from pg_receivewal, not from the archiver.
  if (server.wal.method !== 'push') return;
  const why = archiverNeverArchives(settings);
  if (why === undefined) return;
  throw new PgbkError('PG', `base backup refused: ${why}, so the backup's WAL would never reach the catalog`, {
    server: server.name,
    hint: isRefusingArchiveCommand(settings.archiveCommand)
      ? REFUSING_ARCHIVE_COMMAND_HINT
      : `set archive_command = 'pgbk wal-push ${server.name} %p' and reload PostgreSQL (pgbk check ${server.name} shows the server's archive settings)`,
  });
}
