/** `pgbk restore`'s arguments, parsed once for a local restore and for --remote. */
import { parseDuration } from '../config/duration.js';
import { PgbkError } from '../errors.js';
import type { ArchiveSetting } from '../pg/recovery-conf.js';
import {
  parseTargetAction,
  parseTargetLsn,
  parseTargetName,
  parseTargetTime,
  parseTargetTimeline,
  parseTargetXid,
  type RecoveryTarget,
  type TargetAction,
  type TargetTimeline,
} from '../restore/target.js';
import { parseCommand, requirePositional } from './options.js';
import { RESTORE_OPTIONS } from './commands.js';

export interface RestoreArgs {
  readonly server: string;
  readonly requested: string | undefined;
  readonly targetDir: string;
  readonly tablespaceDir: string | undefined;
  readonly target: RecoveryTarget;
  readonly action: TargetAction;
  readonly timeline: TargetTimeline;
  readonly force: boolean;
  readonly verifyChecksums: boolean;
  /** --no-archive: 'off'; --keep-archiving: 'keep'; neither: 'refuse' (pg/recovery-conf.ts). */
  readonly archiving: ArchiveSetting;
  /** Restore even though the WAL to replay creates tablespaces at the source's paths (another host only). */
  readonly allowNewTablespaces: boolean;
  readonly json: boolean;
  readonly debug: boolean;
  readonly config: string | undefined;
  readonly lockTimeoutMs: number;
}

function archivingOf(noArchive: boolean, keep: boolean): ArchiveSetting {
  if (noArchive && keep) throw new PgbkError('USAGE', 'restore: --no-archive and --keep-archiving conflict: give at most one');
  return noArchive ? 'off' : keep ? 'keep' : 'refuse';
}

/** Parse and validate the command line; every mistake is a USAGE error naming the flags. */
export function parseRestoreArgs(args: readonly string[]): RestoreArgs {
  const { values, positionals } = parseCommand('restore', args, RESTORE_OPTIONS);
  const server = requirePositional('restore', positionals, 0, 'SERVER');
  if (positionals.length > 2) throw new PgbkError('USAGE', `restore: unexpected argument "${positionals[2]}"`);
  const requested = positionals[1];
  if (requested !== undefined && requested !== 'latest' && !/^\d{8}T\d{6}Z$/.test(requested)) {
    throw new PgbkError(
      'USAGE',
      `restore: "${requested}" is not a backup id (YYYYMMDDTHHMMSSZ) or latest`,
      requested.includes('/') ? { hint: `the directory to restore into is given as --target-dir ${requested}` } : {},
    );
  }
  const targetDir = values['target-dir'];
  if (targetDir === undefined || targetDir === '') throw new PgbkError('USAGE', 'restore: --target-dir DIR is required');

  const given: string[] = [];
  if (values['target-time'] !== undefined) given.push('--target-time');
  if (values['target-lsn'] !== undefined) given.push('--target-lsn');
  if (values['target-xid'] !== undefined) given.push('--target-xid');
  if (values['target-name'] !== undefined) given.push('--target-name');
  if (values['target-immediate'] === true) given.push('--target-immediate');
  if (given.length > 1) {
    throw new PgbkError('USAGE', `restore: ${given.join(' and ')} conflict: give at most one recovery target`);
  }
  let target: RecoveryTarget = { kind: 'latest' };
  if (values['target-time'] !== undefined) {
    target = { kind: 'time', text: values['target-time'].trim(), micros: parseTargetTime(values['target-time']) };
  } else if (values['target-lsn'] !== undefined) {
    target = { kind: 'lsn', lsn: parseTargetLsn(values['target-lsn']) };
  } else if (values['target-xid'] !== undefined) {
    target = { kind: 'xid', xid: parseTargetXid(values['target-xid']) };
  } else if (values['target-name'] !== undefined) {
    target = { kind: 'name', name: parseTargetName(values['target-name']) };
  } else if (values['target-immediate'] === true) {
    target = { kind: 'immediate' };
  }
  if (values['target-action'] !== undefined && target.kind === 'latest') {
    throw new PgbkError('USAGE', 'restore: --target-action needs a target (--target-time, -lsn, -xid, -name or -immediate)', {
      hint: 'without a target PostgreSQL replays all archived WAL and then always promotes',
    });
  }
  const action = values['target-action'] === undefined ? 'pause' : parseTargetAction(values['target-action']);
  const timeline: TargetTimeline = values['target-timeline'] === undefined ? { kind: 'latest' } : parseTargetTimeline(values['target-timeline']);
  let lockTimeoutMs = 60_000;
  if (values['lock-timeout'] !== undefined) {
    try {
      lockTimeoutMs = parseDuration(values['lock-timeout']) * 1000;
    } catch {
      throw new PgbkError('USAGE', `restore: --lock-timeout ${values['lock-timeout']}: expected a duration such as 30s, 5m`);
    }
  }
  return {
    server,
    requested,
    targetDir,
    tablespaceDir: values['tablespace-dir'],
    target,
    action,
    timeline,
    force: values.force === true,
    verifyChecksums: values['verify-checksums'] === true,
    archiving: archivingOf(values['no-archive'] === true, values['keep-archiving'] === true),
    allowNewTablespaces: values['allow-new-tablespaces'] === true,
    json: values.json === true,
    debug: values.debug === true,
    config: values.config,
    lockTimeoutMs,
  };
}

/** What the summary says about the restored copy's settings and how to start it (same host). */
