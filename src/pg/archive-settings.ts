/**
 * Whether a server's own archiver can ever archive a segment, from its settings alone. Pure.
 *
 * `pgbk restore` writes `archive_command = 'false'` into a restored copy (pg/recovery-conf.ts), so
 * that a copy promoted for a look archives nothing into the catalog. A DBA who then promotes such a
 * copy in the server's place and forgets those lines has a primary whose archiver fails forever:
 * check says so, plan warns, and a base backup refuses before it copies anything instead of waiting
 * backup.archiveTimeout for an end segment that never comes.
 */

export interface ArchiveSettings {
  readonly archiveMode: string;
  readonly archiveCommand: string;
  /** PG 15+: when set, archive_command is ignored. Empty when unset or unsupported. */
  readonly archiveLibrary: string;
  readonly inRecovery: boolean;
}

/** archive_command values that archive nothing by design: restore's 'false' and its full path. */
export function isRefusingArchiveCommand(command: string): boolean {
  const c = command.trim();
  return c === 'false' || c === '/bin/false' || c === '/usr/bin/false';
}

/** What to do about a refusing archive_command on a cluster that now stands in for the server. */
export const REFUSING_ARCHIVE_COMMAND_HINT =
  'if this cluster now replaces the server, remove the archive_command and archive_library lines pgbk restore wrote into postgresql.auto.conf (or set archive_command with ALTER SYSTEM) and reload PostgreSQL';

/**
 * Why the server's archiver will never archive a segment although archive_mode asks it to; undefined
 * when it may (or when archiving is not this server's job: archive_mode off, or a standby without
 * archive_mode = always, whose primary archives).
 */
export function archiverNeverArchives(s: ArchiveSettings): string | undefined {
  const archives = s.archiveMode === 'always' || (s.archiveMode === 'on' && !s.inRecovery);
  if (!archives || s.archiveLibrary !== '') return undefined;
  const cmd = s.archiveCommand.trim();
  if (isRefusingArchiveCommand(cmd)) {
    return `archive_command is '${cmd}': the server archives no WAL (pgbk restore writes 'false' into a restored copy so that it does not archive)`;
  }
  if (cmd === '' || cmd === '(disabled)') return 'archive_command is empty: the server archives no WAL';
  return undefined;
}
