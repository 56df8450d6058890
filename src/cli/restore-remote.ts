import type { CliIo } from './io.js';
import { loadDesired, logTo } from './load.js';
import { parseRestoreArgs } from './restore-args.js';
import { PgbkError } from '../errors.js';
import { restoreRemote, type RemoteRestoreSummary, type RemoteSpec } from '../restore/remote.js';
import { writeJson } from './json-output.js';
import { plural } from '../lib/plural.js';
import { progressEnabled } from '../lib/progress.js';
import { shellQuote } from '../lib/shell-quote.js';

/** What pgbk wrote about archiving, in the words of the local summary (restore/start-command.ts). */
function archivingText(s: RemoteRestoreSummary): string {
  switch (s.archiving) {
    case 'refuse':
      return "archive_command = 'false' (the default): once promoted, the copy archives nothing into the catalog; if it replaces the server, remove pgbk's archive lines from its postgresql.auto.conf and reload (or restore with --keep-archiving)";
    case 'keep':
      return `the backup's archive settings are kept (--keep-archiving): once promoted, the copy archives as server ${s.server}`;
    case 'off':
      return 'archive_mode = off (--no-archive): the copy archives nothing';
    default: {
      const never: never = s.archiving;
      return String(never);
    }
  }
}

function renderRemoteSummary(s: RemoteRestoreSummary): string {
  const lines = [
    `Restored backup ${s.backupId} of ${s.server} onto ${s.remote}:${s.targetDir}`,
    `  chosen: ${s.reason}`,
    `  target: ${s.target}, timeline ${s.targetTimeline}, then ${s.action}`,
    `  archive: ${archivingText(s)}`,
  ];
  for (const ts of s.tablespaces) lines.push(`  tablespace ${ts.oid} → ${ts.location}`);
  if (s.verifiedAgainstManifest) lines.push('  checked: every file against backup_manifest (pg_verifybackup on the database host)');
  if (s.wal.mode === 'bucket') {
    lines.push(
      `  WAL:    read on demand from ${s.wal.from} by the database host (pgbk --config ${s.wal.configPath} there), prefetched into ${s.targetDir}/.pgbk-spool`,
    );
  } else if (s.wal.mode === 'fetch') {
    lines.push(
      `  WAL:    fetched on demand over SSH from ${s.wal.from} (${s.wal.derivedFrom === 'flag' ? '--wal-from' : "derived from the backup's archive_command"}), prefetched into ${s.targetDir}/.pgbk-spool`,
    );
  } else {
    lines.push(
      `  WAL:    ${plural(s.wal.files, 'file')} copied up front into ${s.targetDir}/pgbk_wal${s.wal.first === undefined ? '' : ` (${s.wal.first}…${s.wal.last})`}: ${s.wal.why}`,
    );
  }
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  // The port and socket directory are the backup's: on the source's own host they would clash.
  lines.push(
    `Next: start PostgreSQL there as the user owning ${s.targetDir} (pg_ctl -D ${shellQuote(s.targetDir)} start); its port and socket directory are the backup's, so if the source runs on that host, add -o "-p FREE_PORT -k ${shellQuote(s.targetDir)}".`,
  );
  return `${lines.join('\n')}\n`;
}

/** `pgbk restore … --remote USER@HOST[:PORT]`: the same arguments as a local restore, plus the SSH target. */
export async function mainRemote(args: readonly string[], remote: RemoteSpec, io: CliIo, signal?: AbortSignal): Promise<number> {
  const a = parseRestoreArgs(args);
  const desired = await loadDesired(a.config, io, { s3: true });
  if (!desired.servers.some((s) => s.name === a.server)) {
    throw new PgbkError('USAGE', `restore: unknown server "${a.server}" (not in ${desired.configPath})`);
  }
  const s = await restoreRemote({
    catalog: desired.catalog,
    server: a.server,
    requested: a.requested,
    targetDir: a.targetDir,
    target: a.target,
    action: a.action,
    timeline: a.timeline,
    remote,
    lockTimeoutMs: a.lockTimeoutMs,
    force: a.force,
    verifyChecksums: a.verifyChecksums,
    archiving: a.archiving,
    allowNewTablespaces: a.allowNewTablespaces,
    log: logTo(io),
    progressOut: io.stderr,
    showProgress: progressEnabled(io.stderr, io.env),
    now: new Date(),
    ...(signal === undefined ? {} : { signal }),
  });
  if (a.json) writeJson(io, 'restore', { ...s });
  else io.stdout.write(renderRemoteSummary(s));
  return 0;
}
