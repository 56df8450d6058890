/**
 * Recovery configuration for a restored data directory (PostgreSQL ≥ 12): an empty
 * `recovery.signal` puts the server into targeted archive recovery, and the settings go into
 * `postgresql.auto.conf`, which PostgreSQL reads last (so they win over postgresql.conf).
 *
 * Earlier recovery settings in postgresql.auto.conf (a restored standby, an older restore) are
 * commented out rather than overridden: PostgreSQL refuses two different recovery_target_* kinds
 * even when one is set to '' later ("multiple recovery targets specified").
 */

import { PgbkError } from '../errors.js';
import { shellQuote } from '../lib/shell-quote.js';

export type RecoveryTargetSetting =
  | { readonly kind: 'time' | 'lsn' | 'xid' | 'name'; readonly value: string }
  | { readonly kind: 'immediate' }
  | { readonly kind: 'latest' };

/**
 * What the restored server does about archiving once it is promoted (restore's flags):
 * - 'refuse' (the default, as Barman's recover does): archive_command = 'false'. A promoted copy
 *   keeps its WAL in pg_wal and logs every failed attempt, so nothing reaches a catalog until the
 *   operator turns archiving back on for a copy that replaces the server. Before, a copy restored to
 *   look at something and then promoted archived its new timeline into the production catalog as
 *   the server, and later restores to the latest timeline followed the copy's WAL.
 * - 'off' (`--no-archive`): archive_mode = off, an inspection copy that never archives.
 * - 'keep' (`--keep-archiving`): the backup's own settings; the copy is the server's replacement
 *   and archives its new timeline wherever the server did.
 */
export type ArchiveSetting = 'refuse' | 'off' | 'keep';

export interface RecoveryConfig {
  readonly restoreCommand: string;
  readonly target: RecoveryTargetSetting;
  readonly action: 'pause' | 'promote' | 'shutdown';
  /** "latest", "current" or a timeline number. */
  readonly timeline: string;
  /** recovery_target_inclusive for time, LSN and xid targets; PostgreSQL's default is true. */
  readonly inclusive?: boolean;
  /** Run once when recovery ends (pgbk uses it to remove the wal-fetch spool). */
  readonly recoveryEndCommand?: string;
  readonly archiving: ArchiveSetting;
  /**
   * server_version_num of the restored cluster: from PostgreSQL 15 on, refusing also clears
   * archive_library, which would otherwise be used instead of archive_command.
   */
  readonly pgVersion: number;
}

/** The settings written for `archiving`, in order. */
function archiveSettings(cfg: RecoveryConfig): Array<readonly [string, string]> {
  switch (cfg.archiving) {
    case 'off':
      return [['archive_mode', 'off']];
    case 'refuse':
      return cfg.pgVersion >= 150000
        ? [
            ['archive_library', ''],
            ['archive_command', 'false'],
          ]
        : [['archive_command', 'false']];
    case 'keep':
      return [];
    default: {
      const never: never = cfg.archiving;
      throw new PgbkError('INTERNAL', `unknown archiving setting ${String(never)}`);
    }
  }
}

/** The settings pgbk owns; earlier lines for them are commented out. */
export const MANAGED_SETTINGS: readonly string[] = [
  'restore_command',
  'recovery_target',
  'recovery_target_lsn',
  'recovery_target_name',
  'recovery_target_time',
  'recovery_target_xid',
  'recovery_target_inclusive',
  'recovery_target_action',
  'recovery_target_timeline',
  'recovery_end_command',
];

/**
 * A configuration-file string literal. PostgreSQL's lexer (guc-file.l) ends the string at a single
 * quote ('' is a literal one) and processes backslash escapes (\\ is a literal backslash). A value
 * cannot span lines.
 */
export function quoteConfValue(value: string): string {
  if (/[\n\r\0]/.test(value)) {
    throw new PgbkError('USAGE', `a configuration value cannot contain a line break or NUL: ${JSON.stringify(value)}`);
  }
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** restore_command replaces %f, %p, %r and %%: a literal % in our own arguments must be doubled. */
function escapePercent(text: string): string {
  return text.replace(/%/g, '%%');
}

export interface RestoreCommandParts {
  /** Absolute path of the node binary (process.execPath): pgbk need not be on PostgreSQL's PATH. */
  readonly node: string;
  /** Absolute path of pgbk's dist/src/cli.js. */
  readonly cli: string;
  readonly configPath: string;
  readonly server: string;
  readonly extraArgs?: readonly string[];
}

/** Words quoted for sh, with % doubled for restore_command's own substitution. */
export function commandLine(words: readonly string[]): string {
  for (const w of words) {
    if (/[\n\r\0]/.test(w)) throw new PgbkError('USAGE', `command argument contains a line break: ${JSON.stringify(w)}`);
  }
  return words.map((w) => escapePercent(shellQuote(w))).join(' ');
}

/** `<node> <cli.js> wal-fetch --config <file> [extra…] <server> %f %p`, quoted for sh and for %. */
export function buildRestoreCommand(parts: RestoreCommandParts): string {
  const words = [parts.node, parts.cli, 'wal-fetch', '--config', parts.configPath, ...(parts.extraArgs ?? []), parts.server];
  return `${commandLine(words)} %f %p`;
}

/** `<node> <cli.js> wal-fetch --clean-spool`: PostgreSQL runs it in the data directory. */
export function buildSpoolCleanupCommand(parts: Pick<RestoreCommandParts, 'node' | 'cli'>): string {
  return commandLine([parts.node, parts.cli, 'wal-fetch', '--clean-spool']);
}

/** The settings, in the order they are written. */
export function recoverySettings(cfg: RecoveryConfig): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [['restore_command', cfg.restoreCommand]];
  const t = cfg.target;
  switch (t.kind) {
    case 'time':
    case 'lsn':
    case 'xid':
    case 'name':
      out.push([`recovery_target_${t.kind}`, t.value]);
      if (t.kind !== 'name') out.push(['recovery_target_inclusive', cfg.inclusive === false ? 'false' : 'true']);
      break;
    case 'immediate':
      out.push(['recovery_target', 'immediate']);
      break;
    case 'latest':
      break;
    default: {
      const never: never = t;
      throw new PgbkError('INTERNAL', `unknown recovery target ${String(never)}`);
    }
  }
  // Without a target recovery always ends by promoting at the end of WAL: an action would be ignored.
  if (t.kind !== 'latest') out.push(['recovery_target_action', cfg.action]);
  out.push(['recovery_target_timeline', cfg.timeline]);
  if (cfg.recoveryEndCommand !== undefined) out.push(['recovery_end_command', cfg.recoveryEndCommand]);
  out.push(...archiveSettings(cfg));
  return out;
}

function settingName(line: string): string | undefined {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=|\s)/.exec(line);
  return m?.[1]?.toLowerCase();
}

/**
 * postgresql.auto.conf with earlier recovery settings commented out and ours appended. Pure, so
 * the exact text is unit-tested.
 */
export function mergeAutoConf(existing: string, cfg: RecoveryConfig, header: string): string {
  const managed = new Set([...MANAGED_SETTINGS, ...archiveSettings(cfg).map(([name]) => name)]);
  const kept = existing
    .split('\n')
    .map((line) => {
      const name = settingName(line);
      return name !== undefined && managed.has(name) ? `# replaced by pgbk restore: ${line}` : line;
    })
    .join('\n');
  const body = recoverySettings(cfg)
    .map(([k, v]) => `${k} = ${quoteConfValue(v)}`)
    .join('\n');
  const sep = kept === '' || kept.endsWith('\n') ? '' : '\n';
  return `${kept}${sep}# ${header.replace(/\n/g, ' ')}\n${body}\n`;
}
