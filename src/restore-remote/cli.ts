import type { CliIo } from '../cli/io.js';
import { loadDesired, logTo } from '../cli/load.js';
import { parseRestoreArgs } from '../cli/restore.js';
import { PgbkError } from '../errors.js';
import { restoreRemote, type RemoteSpec } from './restore-remote.js';

/** `pgbk restore … --remote USER@HOST[:PORT]`: the same arguments as a local restore, plus the SSH target. */
export async function mainRemote(args: readonly string[], remote: RemoteSpec, io: CliIo): Promise<number> {
  const a = parseRestoreArgs(args);
  if (a.tablespaceDir !== undefined || a.force) {
    throw new PgbkError('USAGE', 'restore --remote: --tablespace-dir and --force are not supported with --remote');
  }
  const desired = await loadDesired(a.config, io);
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
    log: logTo(io),
    now: new Date(),
  });
  io.stdout.write(
    a.json
      ? `${JSON.stringify({ formatVersion: 1, ...s }, null, 2)}\n`
      : `Restored backup ${s.backupId} of ${s.server} onto ${s.remote}:${s.targetDir}\n  chosen: ${s.reason}\n  target: ${s.target}\n  WAL:    ${s.walFilesSent} file(s) prefetched into ${s.targetDir}/pgbk_wal\nNext: start PostgreSQL there (pg_ctl -D ${s.targetDir} start as the user owning it).\n`,
  );
  return 0;
}
