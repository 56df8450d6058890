/**
 * `pgbk restore SERVER [ID|latest] --target-dir DIR [one target] [--target-action …]
 * [--target-timeline …] [--tablespace-dir DIR] [--force] [--verify-checksums] [--no-archive] [--json]` — see
 * src/restore/restore.ts.
 * Argument checks happen here (exactly one target; an action needs a target); the summary goes to
 * stdout (text or --json), progress and log lines to stderr.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../config/duration.js';
import { PgbkError } from '../errors.js';
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
import { progressEnabled } from '../restore/progress.js';
import type { RestoreSummary } from '../restore/restore.js';
import { gatherStartFacts, renderStartLines, settingsReport, startCommand, type SettingReport, type StartCommand } from '../restore/start-command.js';
import type { CliIo } from './io.js';
import { loadDesired, logTo } from './load.js';
import { parseCommand, requirePositional } from './options.js';
import { RESTORE_OPTIONS } from './commands.js';
import { writeJson } from './json-output.js';

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
  readonly noArchive: boolean;
  /** Restore even though the WAL to replay creates tablespaces at the source's paths (another host only). */
  readonly allowNewTablespaces: boolean;
  readonly json: boolean;
  readonly debug: boolean;
  readonly config: string | undefined;
  readonly lockTimeoutMs: number;
}

/** Parse and validate the command line; every mistake is a USAGE error naming the flags. */
export function parseRestoreArgs(args: readonly string[]): RestoreArgs {
  const { values, positionals } = parseCommand('restore', args, RESTORE_OPTIONS);
  const server = requirePositional('restore', positionals, 0, 'SERVER');
  if (positionals.length > 2) throw new PgbkError('USAGE', `restore: unexpected argument "${positionals[2]}"`);
  const requested = positionals[1];
  if (requested !== undefined && requested !== 'latest' && !/^\d{8}T\d{6}Z$/.test(requested)) {
    throw new PgbkError('USAGE', `restore: "${requested}" is not a backup id (YYYYMMDDTHHMMSSZ) or latest`);
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
  const timeline: TargetTimeline =
    values['target-timeline'] === undefined ? { kind: 'latest' } : parseTargetTimeline(values['target-timeline']);
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
    noArchive: values['no-archive'] === true,
    allowNewTablespaces: values['allow-new-tablespaces'] === true,
    json: values.json === true,
    debug: values.debug === true,
    config: values.config,
    lockTimeoutMs,
  };
}

/** What the summary says about the restored copy's settings and how to start it (same host). */
export interface StartAdvice {
  readonly settings: readonly SettingReport[];
  readonly start: StartCommand;
}

export async function startAdvice(targetDir: string, noArchive: boolean): Promise<StartAdvice> {
  const facts = await gatherStartFacts(targetDir, noArchive);
  return { settings: settingsReport(facts), start: startCommand(facts) };
}

/** The --json object: the summary plus the settings and the start command (data only, no printing). */
/** The body of `restore --json` (inside the common envelope, cli/json-output.ts). */
export function restoreJson(s: RestoreSummary, advice?: StartAdvice): Record<string, unknown> {
  return { ...s, ...(advice === undefined ? {} : { settings: advice.settings, start: advice.start }) };
}

export function renderSummary(s: RestoreSummary, advice?: StartAdvice): string {
  const lines = [
    `Restored backup ${s.backupId} of ${s.server} into ${s.targetDir}`,
    `  chosen:    ${s.reason}`,
    `  target:    ${s.target}, timeline ${s.targetTimeline}, then ${s.action}`,
    `  WAL:       ${s.wal.segments} segment${s.wal.segments === 1 ? '' : 's'} ${s.wal.from}…${s.wal.to} to replay from the archive`,
    `  unpacked:  ${(s.storedBytes / 1048576).toFixed(1)} MiB stored, ${s.files} entries, in ${s.seconds.toFixed(1)} s; verified against backup_manifest`,
  ];
  for (const t of s.tablespaces) lines.push(`  tablespace ${t.oid} → ${t.location}`);
  for (const w of s.warnings) lines.push(`  warning:   ${w}`);
  if (advice !== undefined) lines.push(...renderStartLines(advice.settings, advice.start));
  lines.push(`Next: ${s.nextStep}.`);
  return `${lines.join('\n')}\n`;
}

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // --remote USER@HOST[:PORT]: restore onto the database host over SSH (src/restore-remote).
    const { splitRemoteArgs } = await import('../restore-remote/restore-remote.js');
    const split = splitRemoteArgs(args);
    if (split.remote !== undefined) return await (await import('../restore-remote/cli.js')).mainRemote(split.rest, split.remote, io);
    const a = parseRestoreArgs(args);
    const desired = await loadDesired(a.config, io);
    if (!desired.servers.some((s) => s.name === a.server)) {
      throw new PgbkError('USAGE', `restore: unknown server "${a.server}" (not in ${desired.configPath})`);
    }
    const { restoreBackup } = await import('../restore/restore.js');
    const summary = await restoreBackup({
      catalog: desired.catalog,
      configPath: desired.configPath,
      server: a.server,
      requested: a.requested,
      targetDir: path.resolve(io.cwd, a.targetDir),
      ...(a.tablespaceDir === undefined ? {} : { tablespaceDir: path.resolve(io.cwd, a.tablespaceDir) }),
      target: a.target,
      action: a.action,
      timeline: a.timeline,
      force: a.force,
      verifyChecksums: a.verifyChecksums,
      noArchive: a.noArchive,
      allowNewTablespaces: a.allowNewTablespaces,
      lockTimeoutMs: a.lockTimeoutMs,
      nodePath: process.execPath,
      cliPath: fileURLToPath(new URL('../cli.js', import.meta.url)),
      log: logTo(io),
      progressOut: io.stderr,
      showProgress: progressEnabled(io.stderr, io.env),
      now: new Date(),
      signal: abort.signal,
    });
    const advice = await startAdvice(summary.targetDir, a.noArchive);
    if (a.json) writeJson(io, 'restore', restoreJson(summary, advice));
    else io.stdout.write(renderSummary(summary, advice));
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
