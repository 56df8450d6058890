/**
 * `pgbk restore SERVER [ID|latest] --target-dir DIR [one target] [--target-action …]
 * [--target-timeline …] [--tablespace-dir DIR] [--force] [--verify-checksums] [--no-archive | --keep-archiving] [--json]` — see
 * src/restore/restore.ts.
 * Argument checks happen here (exactly one target; an action needs a target); the summary goes to
 * stdout (text or --json), progress and log lines to stderr.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgbkError } from '../errors.js';
import { progressEnabled } from '../lib/progress.js';
import type { RestoreSummary } from '../restore/restore.js';
import { gatherStartFacts, renderStartLines, settingsReport, startCommand, type SettingReport, type StartCommand } from '../restore/start-command.js';
import type { S3RepositoryConfig } from '../config/resolved.js';
import type { ArchiveSetting } from '../pg/recovery-conf.js';
import type { CliIo } from './io.js';
import { loadDesired, logTo } from './load.js';
import { writeJson } from './json-output.js';
import { parseRestoreArgs } from './restore-args.js';

export { parseRestoreArgs, type RestoreArgs } from './restore-args.js';

export interface StartAdvice {
  readonly settings: readonly SettingReport[];
  readonly start: StartCommand;
}

export async function startAdvice(targetDir: string, archiving: ArchiveSetting, s3?: Pick<S3RepositoryConfig, 'url' | 'profile'>): Promise<StartAdvice> {
  const facts = await gatherStartFacts(targetDir, archiving, s3);
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
    // --remote USER@HOST[:PORT]: the same restore onto the database host over SSH (src/restore/remote.ts).
    // Only the argument split is loaded for a local restore: remote.ts brings ssh2 (~0.1 s of start-up).
    const { splitRemoteArgs } = await import('../restore/remote-args.js');
    const split = splitRemoteArgs(args);
    if (split.remote !== undefined) return await (await import('./restore-remote.js')).mainRemote(split.rest, split.remote, io, abort.signal);
    const a = parseRestoreArgs(args);
    const desired = await loadDesired(a.config, io, { s3: true });
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
      archiving: a.archiving,
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
    const advice = await startAdvice(summary.targetDir, a.archiving, desired.s3);
    if (a.json) writeJson(io, 'restore', restoreJson(summary, advice));
    else io.stdout.write(renderSummary(summary, advice));
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
