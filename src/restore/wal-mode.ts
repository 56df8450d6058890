/**
 * How a cluster restored with `--remote` gets its WAL, decided in this order:
 * 1. `--wal-from ssh://USER@HOST[:PORT]/CATALOG`: restore_command is `pgbk wal-fetch --from …` on
 *    the database host (shell fast path first, then a long-lived SSH worker that prefetches);
 * 2. else, when the restored cluster's own archive_command is `pgbk wal-push --to ssh://…` into
 *    this catalog, the same settings are derived from it (the credentials the database host
 *    already uses to reach the backup host);
 * 3. else the WAL recovery needs is copied up front into DIR/pgbk_wal and restore_command is a
 *    plain `cp` (Barman's default): begin WAL up to the target's segment when the target fixes
 *    one (LSN, immediate), else to the end of the archived WAL on the way, plus history files.
 */

import type { ArchivedWal } from '../model/types.js';
import { PgbkError } from '../errors.js';
import { commandLine } from '../pg/recovery-conf.js';
import { segmentNumber } from '../pg/wal-name.js';
import { buildFastPathAround } from '../wal-fetch/fast-path.js';
import { DEFAULT_PREFETCH, fetchOptionArgs, parseSource, type FetchOptions } from '../wal-fetch/source.js';
import { deriveFetchFromArchiveCommand, effectiveArchiveCommand } from './archive-command.js';

/** --wal-from and friends as given to restore (paths on the database host). */
export interface WalFromFlags {
  readonly from?: string;
  readonly identityFile?: string;
  readonly knownHosts?: string;
  readonly remotePgbk?: string;
  /** --db-pgbk: how the database host runs pgbk (split on spaces). */
  readonly dbPgbk?: string;
}

export type WalMode =
  | {
      readonly kind: 'fetch';
      readonly source: 'flag' | 'archive_command';
      readonly options: FetchOptions;
      readonly dbPgbk: readonly string[];
    }
  | { readonly kind: 'copy'; readonly why: string };

function words(cmd: string): string[] {
  return cmd.split(' ').filter((w) => w !== '');
}

/** Check the flags alone (before anything is written): a bad URL is a USAGE error. */
export function checkWalFlags(flags: WalFromFlags): void {
  if (flags.from !== undefined) {
    parseSource(flags.from, 'restore --wal-from');
    for (const [name, v] of [
      ['--wal-identity', flags.identityFile],
      ['--wal-known-hosts', flags.knownHosts],
    ] as const) {
      if (v !== undefined && !v.startsWith('/')) throw new PgbkError('USAGE', `restore ${name} ${v}: give the absolute path of the file on the database host`);
    }
  } else if (flags.identityFile !== undefined || flags.knownHosts !== undefined || flags.remotePgbk !== undefined) {
    throw new PgbkError('USAGE', 'restore: --wal-identity, --wal-known-hosts and --wal-remote-pgbk go with --wal-from');
  }
  if (flags.dbPgbk !== undefined && words(flags.dbPgbk).length === 0) throw new PgbkError('USAGE', 'restore --db-pgbk: empty command');
}

/**
 * Decide the WAL mode. `conf` is the restored postgresql.conf and postgresql.auto.conf (as they
 * came out of the backup, before pgbk edits them). Pure.
 */
export function decideWalMode(
  flags: WalFromFlags,
  conf: { readonly postgresqlConf: string; readonly autoConf: string },
  catalog: string,
  server: string,
): WalMode {
  const archiveCommand = effectiveArchiveCommand(conf.postgresqlConf, conf.autoConf);
  const derived =
    archiveCommand === undefined
      ? 'the backup has no archive_command in postgresql.conf or postgresql.auto.conf'
      : deriveFetchFromArchiveCommand(archiveCommand);
  const dbPgbkFrom = (d: typeof derived): readonly string[] => (flags.dbPgbk !== undefined ? words(flags.dbPgbk) : typeof d === 'string' ? ['pgbk'] : d.dbPgbk);
  if (flags.from !== undefined) {
    const source = parseSource(flags.from, 'restore --wal-from');
    return {
      kind: 'fetch',
      source: 'flag',
      dbPgbk: dbPgbkFrom(derived),
      options: {
        source,
        from: flags.from,
        server,
        ...(flags.identityFile === undefined ? {} : { identityFile: flags.identityFile }),
        ...(flags.knownHosts === undefined ? {} : { knownHosts: flags.knownHosts }),
        remotePgbk: flags.remotePgbk ?? 'pgbk',
        prefetch: DEFAULT_PREFETCH,
      },
    };
  }
  if (typeof derived === 'string') return { kind: 'copy', why: derived };
  let source;
  try {
    source = parseSource(derived.from);
  } catch {
    return { kind: 'copy', why: `archive_command's --to ${derived.from} is not a valid ssh:// URL` };
  }
  if (source.catalog.replace(/\/+$/, '') !== catalog.replace(/\/+$/, '')) {
    return { kind: 'copy', why: `archive_command pushes to ${source.catalog}, not to this catalog ${catalog}` };
  }
  if (derived.server !== server) return { kind: 'copy', why: `archive_command archives as server "${derived.server}", not "${server}"` };
  return {
    kind: 'fetch',
    source: 'archive_command',
    dbPgbk: dbPgbkFrom(derived),
    options: {
      source,
      from: derived.from,
      server,
      ...(derived.identityFile === undefined ? {} : { identityFile: derived.identityFile }),
      ...(derived.knownHosts === undefined ? {} : { knownHosts: derived.knownHosts }),
      remotePgbk: derived.remotePgbk ?? 'pgbk',
      prefetch: DEFAULT_PREFETCH,
    },
  };
}

/** restore_command and recovery_end_command for the fetch mode (PostgreSQL runs both in the data directory). */
export function fetchCommands(mode: Extract<WalMode, { kind: 'fetch' }>): { readonly restoreCommand: string; readonly recoveryEndCommand: string } {
  return {
    restoreCommand: buildFastPathAround(commandLine([...mode.dbPgbk, 'wal-fetch', ...fetchOptionArgs(mode.options), mode.options.server])),
    recoveryEndCommand: commandLine([...mode.dbPgbk, 'wal-fetch', '--clean-spool']),
  };
}

/**
 * The archived files the copy mode sends: every .history file and the segments whose number lies
 * in [from, to] (any timeline: a timeline switch inside the range needs both). `to` undefined:
 * to the end of the archive.
 */
export function walToCopy(archived: ArchivedWal, from: string, to: string | undefined, segSize: number): string[] {
  const lo = segmentNumber(from, segSize);
  const hi = to === undefined ? Number.POSITIVE_INFINITY : segmentNumber(to, segSize);
  const segs = archived.segments.filter((s) => {
    const n = segmentNumber(s, segSize);
    return n >= lo && n <= hi;
  });
  return [...archived.histories, ...segs];
}
