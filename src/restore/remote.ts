/**
 * `pgbk restore SERVER [ID|latest] --target-dir DIR --remote USER@HOST[:PORT] [--identity F]
 * [--known-hosts F] [--tablespace-dir DIR | OID=DIR …] [--wal-from ssh://… [--wal-identity F]
 * [--wal-known-hosts F] [--wal-remote-pgbk CMD]] [--db-pgbk CMD]`: restore onto the database host
 * over SSH (host key verified): the one restore (restore.ts) run against an SshTransport, so every
 * step — the checks of the target directories (real paths resolved there with `cd -P`), --force,
 * unpacking either stored layout, pg_verifybackup (on the database host, when it has it),
 * ownership, the recovery configuration — is the local restore's. What differs is decided here:
 * tablespaces go to their recorded locations (or the --tablespace-dir mapping), and the WAL source.
 *
 * WAL (wal-mode.ts): fetched on demand over SSH by `pgbk wal-fetch --from` on the database host
 * (with --wal-from, or derived from the cluster's own `pgbk wal-push --to` archive_command), or
 * else copied up front into DIR/pgbk_wal for a plain `cp` restore_command.
 *
 * Everything that can be refused is refused before the first write (restore.ts), and the flags
 * before the connection is opened.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { SshTransport } from '../transport/ssh.js';
import { remoteHost } from './host.js';
import type { RemoteSpec } from './remote-args.js';
import type { ArchiveSetting } from '../pg/recovery-conf.js';
import { runRestore } from './restore.js';
import { parseTablespaceDirs, parseTablespaceMap, resolveTablespaceLocations, type TablespaceEntry } from './tablespace-map.js';
import { describeTarget, type RecoveryTarget, type TargetAction, type TargetTimeline } from './target.js';
import { checkWalFlags } from './wal-mode.js';
import { remoteWal, type RemoteWalSummary } from './wal-setup.js';

export { splitRemoteArgs, type RemoteSpec } from './remote-args.js';
export type { RemoteWalSummary } from './wal-setup.js';

export interface RemoteRestoreRequest {
  readonly catalog: string;
  readonly server: string;
  readonly requested: string | undefined;
  /** Absolute path on the database host. */
  readonly targetDir: string;
  readonly target: RecoveryTarget;
  readonly action: TargetAction;
  readonly timeline: TargetTimeline;
  readonly remote: RemoteSpec;
  readonly lockTimeoutMs: number;
  /** Delete what the target and tablespace directories hold first (as a local restore does). */
  readonly force?: boolean;
  /** pg_verifybackup also recomputes every file's CRC32C. */
  readonly verifyChecksums?: boolean;
  /** What the restored server does about archiving (pg/recovery-conf.ts ArchiveSetting); default 'refuse'. */
  readonly archiving?: ArchiveSetting;
  /** Restore although the WAL to replay creates tablespaces at the source's paths (src/restore/wal-scan.ts). */
  readonly allowNewTablespaces?: boolean;
  readonly log: (line: string) => void;
  readonly progressOut?: NodeJS.WritableStream;
  readonly showProgress?: boolean;
  readonly now: Date;
  readonly signal?: AbortSignal;
}

export interface RemoteRestoreSummary {
  readonly server: string;
  readonly backupId: string;
  readonly reason: string;
  readonly target: string;
  /** The timeline recovery follows, and what the server does at the target. */
  readonly targetTimeline: number;
  readonly action: TargetAction;
  /** What pgbk wrote about archiving into the copy's postgresql.auto.conf. */
  readonly archiving: ArchiveSetting;
  readonly remote: string;
  readonly targetDir: string;
  readonly tablespaces: readonly TablespaceEntry[];
  readonly wal: RemoteWalSummary;
  /** Kept for consumers of formatVersion 1: WAL files copied up front (0 in fetch mode). */
  readonly walFilesSent: number;
  readonly seconds: number;
  readonly warnings: readonly string[];
  /** pg_verifybackup on the database host checked the restored files against backup_manifest. */
  readonly verifiedAgainstManifest: boolean;
}

export async function restoreRemote(req: RemoteRestoreRequest): Promise<RemoteRestoreSummary> {
  const { server } = req;
  const dir = req.targetDir;
  if (!path.isAbsolute(dir)) throw new PgbkError('USAGE', `restore --remote: --target-dir ${dir} must be absolute`);
  const walFlags = req.remote.wal ?? {};
  checkWalFlags(walFlags);
  const tsDirs = parseTablespaceDirs(req.remote.tablespaceDirs ?? []);
  const t = await SshTransport.connect({
    host: req.remote.host,
    port: req.remote.port,
    user: req.remote.user,
    ...(req.remote.identityFile === undefined ? {} : { identityFile: req.remote.identityFile }),
    ...(req.remote.knownHosts === undefined ? {} : { knownHosts: req.remote.knownHosts }),
    server,
  });
  try {
    const out = await runRestore(remoteHost(t), {
      ...req,
      force: req.force === true,
      targetDir: path.posix.normalize(dir),
      async placeTablespaces(layout, backupId) {
        // The source's locations (the backup's tablespace_map) are needed only where no flag says.
        const recorded = layout.oids.some((o) => !tsDirs.byOid.has(o)) && tsDirs.root === undefined ? parseTablespaceMap((await layout.readMap()) ?? '') : [];
        const locations = resolveTablespaceLocations(layout.oids, recorded, tsDirs, dir, backupId);
        return { dirs: locations.map((l) => ({ flag: `tablespace ${l.oid} location`, path: l.location })), locations };
      },
      wal: remoteWal({ flags: walFlags, catalog: req.catalog, server, target: req.target, log: req.log }),
    });
    return {
      server,
      backupId: out.choice.backup.id,
      reason: out.choice.reason,
      target: describeTarget(req.target),
      targetTimeline: out.choice.targetTimeline,
      action: req.action,
      archiving: req.archiving ?? 'refuse',
      remote: t.description,
      targetDir: dir,
      tablespaces: out.tablespaces,
      wal: out.wal,
      walFilesSent: out.wal.mode === 'copy' ? out.wal.files : 0,
      seconds: out.seconds,
      warnings: out.warnings,
      verifiedAgainstManifest: out.verified,
    };
  } finally {
    await t.close();
  }
}
