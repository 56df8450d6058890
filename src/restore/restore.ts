/**
 * `pgbk restore`: rebuild a data directory from a stored base backup and configure PostgreSQL to
 * replay archived WAL (through `pgbk wal-fetch`) up to the target. Everything that can be refused
 * is refused before the first write: the backup choice and WAL continuity (choose-backup.ts), the
 * target directory, the stored manifest's checksum.
 *
 * Order of writes: mark the backup in use → create/empty the directory → unpack each stored tar
 * (sha256-checked as it streams) → pg_verifybackup against backup_manifest (every file present with
 * its size; CRC32C too with --verify-checksums) → tablespaces, runtime
 * files, recovery configuration → unmark. On failure the directory is emptied again (it was empty
 * before) and the mark removed.
 */

import { chown, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readBackups } from '../catalog/backups.js';
import { compressionOfFile } from '../catalog/compress.js';
import { readIdentity } from '../catalog/identity.js';
import { backupDir } from '../catalog/layout.js';
import { repositoryKindOf } from '../catalog/open.js';
import { storedSource, type StoredSource } from './stored-source.js';
import { listArchivedWal, readArchivedWal } from '../catalog/wal-archive.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { buildSpoolCleanupCommand, writeRecoveryConfig } from '../pg/recovery-conf.js';
import { chooseBackup, type Choice } from './choose-backup.js';
import { buildFastRestoreCommand } from '../wal-fetch/fast-path.js';
import { sha256OfFile } from '../lib/checksum.js';
import { extractStoredTar } from './extract.js';
import { checkNewTablespaces, scanNewTablespaces } from './new-tablespaces.js';
import { linkTablespace, removeRuntimeFiles, removeTablespaceMap, verifyAgainstManifest } from './finalize-pgdata.js';
import { clearInUse, markInUse } from './in-use.js';
import { createProgress } from '../lib/progress.js';
import { describeTarget, targetSetting, type RecoveryTarget, type TargetAction, type TargetTimeline } from './target.js';
import { emptyDir, inspectTargetDir, isInside, prepareTargetDir } from './target-dir.js';
import { parseHistory, type HistoryEntry } from './timeline-history.js';
import { plural } from '../lib/plural.js';

export interface RestoreRequest {
  readonly catalog: string;
  /** Absolute config path, written into restore_command. */
  readonly configPath: string;
  readonly server: string;
  /** Backup id, "latest" or undefined. */
  readonly requested: string | undefined;
  readonly targetDir: string;
  /** Where tablespaces go; default `<target-dir>_tablespaces/<oid>`. */
  readonly tablespaceDir?: string;
  readonly target: RecoveryTarget;
  readonly action: TargetAction;
  readonly timeline: TargetTimeline;
  readonly force: boolean;
  /**
   * Also recompute every file's CRC32C against backup_manifest (pg_verifybackup without
   * --skip-checksums). Off by default: see verifyAgainstManifest for why sizes suffice then.
   */
  readonly verifyChecksums?: boolean;
  /** Write archive_mode = off into the restored directory (an inspection copy). */
  readonly noArchive?: boolean;
  /**
   * Restore even though the WAL to replay creates tablespaces (at the source's paths): only right
   * on another host than the source's (new-tablespaces.ts).
   */
  readonly allowNewTablespaces?: boolean;
  readonly lockTimeoutMs: number;
  /** node binary and pgbk's cli.js, for restore_command. */
  readonly nodePath: string;
  readonly cliPath: string;
  readonly log: (line: string) => void;
  readonly progressOut: NodeJS.WritableStream;
  readonly showProgress: boolean;
  readonly now: Date;
  readonly signal?: AbortSignal;
}

export interface RestoreSummary {
  readonly server: string;
  readonly backupId: string;
  readonly reason: string;
  readonly target: string;
  readonly targetTimeline: number;
  readonly action: TargetAction | 'promote-at-end-of-wal';
  readonly targetDir: string;
  readonly tablespaces: readonly { readonly oid: string; readonly location: string }[];
  readonly wal: { readonly from: string; readonly to: string; readonly segments: number };
  readonly storedBytes: number;
  readonly files: number;
  readonly seconds: number;
  readonly warnings: readonly string[];
  readonly nextStep: string;
}

const TAR_RE = /^(base|\d+)\.tar(\.zst|\.gz)?$/;

/** Read what the choice needs from the catalog and choose. No writes. */
export async function chooseFromCatalog(
  catalog: string,
  server: string,
  requested: string | undefined,
  target: RecoveryTarget,
  timeline: TargetTimeline,
  now: Date,
): Promise<Choice> {
  const identity = await readIdentity(catalog, server);
  if (identity === undefined) {
    throw new PgbkError('NOT_FOUND', `the catalog has nothing for server ${server} yet (no server.json)`, { server });
  }
  const [backups, wal] = await Promise.all([readBackups(catalog, server), listArchivedWal(catalog, server)]);
  const histories = new Map<number, readonly HistoryEntry[]>();
  for (const name of wal.histories) {
    const tli = Number.parseInt(name.slice(0, 8), 16);
    histories.set(tli, parseHistory((await readArchivedWal(catalog, server, name)).toString('utf8'), tli, name));
  }
  return chooseBackup({
    server,
    backups,
    requested,
    target,
    timeline,
    segments: wal.segments,
    histories,
    segSize: identity.walSegmentSize,
    nowMicros: BigInt(now.getTime()) * 1000n,
  });
}

function nextStep(dir: string, target: RecoveryTarget, action: TargetAction): string {
  const start = `start PostgreSQL on ${dir} (the start command above runs it beside the source server); it replays archived WAL through pgbk wal-fetch`;
  if (target.kind === 'latest') return `${start} to the end of the archive, then promotes (opens read-write on a new timeline)`;
  switch (action) {
    case 'pause':
      return `${start} to the target and pauses read-only: check the data, then SELECT pg_wal_replay_resume() to promote (or stop it, change the target, start again)`;
    case 'promote':
      return `${start} to the target and promotes (opens read-write on a new timeline)`;
    case 'shutdown':
      return `${start} to the target and shuts down; remove recovery.signal before starting it again as a primary`;
    default: {
      const never: never = action;
      throw new PgbkError('INTERNAL', `unknown action ${String(never)}`);
    }
  }
}

async function storedTars(source: StoredSource, checksums: Readonly<Record<string, string>>, server: string, id: string): Promise<string[]> {
  const names = (await source.names()).filter((n) => TAR_RE.test(n)).sort();
  const dir = path.dirname(source.where('base.tar'));
  if (!names.some((n) => n.startsWith('base.'))) {
    throw new PgbkError('CATALOG', `backup ${id} has no base.tar[.zst|.gz]`, { server, path: dir });
  }
  for (const n of names) {
    if (checksums[n] === undefined) throw new PgbkError('CATALOG', `backup ${id}: ${n} has no recorded checksum`, { server, path: dir });
  }
  for (const n of Object.keys(checksums)) {
    if (TAR_RE.test(n) && !names.includes(n)) {
      throw new PgbkError('CATALOG', `backup ${id}: ${n} is recorded but missing`, { server, path: source.where(n) });
    }
  }
  return names;
}

export async function restoreBackup(req: RestoreRequest): Promise<RestoreSummary> {
  const started = Date.now();
  const { catalog, server } = req;
  const choice = await chooseFromCatalog(catalog, server, req.requested, req.target, req.timeline, req.now);
  const backup = choice.backup;
  for (const w of choice.warnings) req.log(`warning: ${w}`);
  req.log(`restoring backup ${backup.id} of ${server}: ${choice.reason}`);

  const srcDir = backupDir(catalog, server, backup.id);
  const checksums = backup.checksums;
  // Backup method ssh stores a plain data/ tree instead of tars (src/backup-ssh/restore-tree.ts).
  const sshLayout = backup.method === 'ssh' ? await (await import('../backup/ssh/restore-tree.js')).checkSshBackup(srcDir, backup) : undefined;
  // The stored tars and manifest: local files, or objects read through the port (stored-source.ts).
  const source = await storedSource(catalog, server, backup.id);
  const tars = sshLayout !== undefined ? [] : await storedTars(source, checksums, server, backup.id);
  const manifestFile = sshLayout !== undefined ? undefined : await source.localFile('backup_manifest');
  const manifest = manifestFile?.path ?? path.join(srcDir, 'backup_manifest');
  const manifestSha = checksums['backup_manifest'];
  if (sshLayout === undefined && (manifestSha === undefined || (await sha256OfFile(manifest).catch(() => 'unreadable')) !== manifestSha)) {
    await manifestFile?.dispose();
    throw new PgbkError('CATALOG', `backup ${backup.id}: backup_manifest is missing or does not match its recorded sha256`, {
      server,
      path: source.where('backup_manifest'),
    });
  }
  const tablespaceTars = tars.filter((n) => !n.startsWith('base.'));
  const dirState = await inspectTargetDir(req.targetDir, req.force, catalog);
  const tsRoot = path.resolve(req.tablespaceDir ?? `${dirState.path}_tablespaces`);
  const tsState =
    tablespaceTars.length > 0 || (sshLayout?.tablespaceOids.length ?? 0) > 0
      ? await inspectTargetDir(tsRoot, req.force, catalog, '--tablespace-dir')
      : undefined;
  if (tsState !== undefined && (isInside(tsState.realPath, dirState.realPath) || isInside(dirState.realPath, tsState.realPath))) {
    throw new PgbkError(
      'USAGE',
      `--tablespace-dir ${tsState.path} overlaps --target-dir ${dirState.path} (real paths ${tsState.realPath}, ${dirState.realPath})`,
    );
  }
  const tsWarnings = await refuseNewTablespaces(req, choice);

  const mark = await markInUse(catalog, server, backup.id, req.lockTimeoutMs);
  let storedBytes = 0;
  let files = 0;
  const tablespaces: { oid: string; location: string }[] = [];
  try {
    await prepareTargetDir(dirState, req.log);
    if (tsState !== undefined) await prepareTargetDir(tsState, req.log);
    const sizes = await Promise.all(tars.map((n) => source.size(n)));
    const total = sizes.reduce((a, b) => a + b, 0);
    const progress = createProgress(req.progressOut, req.showProgress, total, `restoring ${backup.id}:`);
    for (const name of tars) {
      const oid = /^(\d+)\.tar/.exec(name)?.[1];
      const dest = oid === undefined ? dirState.path : path.join(tsRoot, oid);
      if (oid !== undefined) await mkdir(dest, { mode: 0o700 });
      const before = storedBytes;
      const filesBefore = files;
      const r = await extractStoredTar({
        file: source.where(name),
        ...(repositoryKindOf(catalog) === 'posix' ? {} : { source: source.open(name) }),
        compression: compressionOfFile(name),
        expectedSha256: checksums[name]!,
        destDir: dest,
        server,
        onProgress: (b, f) => progress.update(before + b, filesBefore + f),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      });
      storedBytes += r.storedBytes;
      files += r.files;
      if (oid !== undefined) {
        await linkTablespace(dirState.path, oid, dest);
        tablespaces.push({ oid, location: dest });
      }
    }
    if (sshLayout !== undefined) {
      const { copyTreeInto } = await import('../backup/ssh/restore-tree.js');
      await copyTreeInto(srcDir, 'data', dirState.path, server);
      for (const oid of sshLayout.tablespaceOids) {
        const dest = path.join(tsRoot, oid);
        await mkdir(dest, { mode: 0o700 });
        await copyTreeInto(srcDir, `tablespaces/${oid}`, dest, server);
        await linkTablespace(dirState.path, oid, dest);
        tablespaces.push({ oid, location: dest });
      }
      storedBytes = sshLayout.bytes;
      files = sshLayout.files;
    }
    progress.finish();
    const fullCheck = req.verifyChecksums === true;
    req.log(`unpacked ${plural(tars.length, 'stored file')}, ${files} entries; verifying against backup_manifest${fullCheck ? ' with checksums' : ''}`);
    if (sshLayout === undefined) {
      await verifyAgainstManifest(dirState.path, manifest, backup.pgVersion, server, { checksums: fullCheck });
    }
    if (tablespaces.length > 0) await removeTablespaceMap(dirState.path);
    await removeRuntimeFiles(dirState.path);
    await giveToDataOwner(dirState.path, tablespaces.map((t) => t.location).concat(tsState === undefined ? [] : [tsRoot]));
    const cmd = { node: req.nodePath, cli: req.cliPath };
    await writeRecoveryConfig(
      dirState.path,
      {
        restoreCommand: buildFastRestoreCommand({ ...cmd, configPath: req.configPath, server }),
        recoveryEndCommand: buildSpoolCleanupCommand(cmd),
        target: targetSetting(req.target),
        action: req.action,
        timeline: String(choice.targetTimeline),
        ...(req.noArchive === true ? { disableArchiving: true } : {}),
      },
      `pgbk restore of server ${server}, backup ${backup.id}, at ${new Date().toISOString()}: target ${describeTarget(req.target)}`,
    );
    // Written just now (as root, 0600): PostgreSQL, running as the data directory's owner, must read them.
    await giveToDataOwner(
      dirState.path,
      ['postgresql.auto.conf', 'recovery.signal'].map((f) => path.join(dirState.path, f)),
    );
  } catch (err) {
    const e = toPgbkError(err, { server });
    req.log(`restore failed; emptying ${dirState.path}${tsState !== undefined ? ` and ${tsRoot}` : ''}`);
    await emptyDir(dirState.path);
    if (tsState !== undefined) await emptyDir(tsRoot);
    throw e;
  } finally {
    await manifestFile?.dispose();
    await clearInUse(catalog, server, backup.id, mark, req.lockTimeoutMs).catch((err: unknown) => {
      req.log(`warning: could not remove the in-use mark of backup ${backup.id}: ${(err as Error).message}`);
    });
  }
  return {
    server,
    backupId: backup.id,
    reason: choice.reason,
    target: describeTarget(req.target),
    targetTimeline: choice.targetTimeline,
    action: req.target.kind === 'latest' ? 'promote-at-end-of-wal' : req.action,
    targetDir: dirState.path,
    tablespaces,
    wal: { from: choice.walFrom, to: choice.walTo, segments: choice.segmentCount },
    storedBytes,
    files,
    seconds: (Date.now() - started) / 1000,
    warnings: [...choice.warnings, ...tsWarnings],
    nextStep: nextStep(dirState.path, req.target, req.action),
  };
}

/** Refuse (before anything is written) a restore whose WAL creates tablespaces; warnings when allowed. */
export async function refuseNewTablespaces(
  req: {
    readonly catalog: string;
    readonly server: string;
    readonly target: RecoveryTarget;
    readonly allowNewTablespaces?: boolean;
    readonly log: (line: string) => void;
  },
  choice: Choice,
): Promise<string[]> {
  const identity = await readIdentity(req.catalog, req.server);
  const segSize = identity?.walSegmentSize ?? 16 * 1024 * 1024;
  const allow = req.allowNewTablespaces === true;
  let scan;
  try {
    scan = await scanNewTablespaces({ catalog: req.catalog, server: req.server, backup: choice.backup, choice, target: req.target, segSize });
  } catch (err) {
    if (!allow) throw err;
    const w = `--allow-new-tablespaces: the WAL to replay could not be checked for CREATE TABLESPACE: ${(err as Error).message}`;
    req.log(`warning: ${w}`);
    return [w];
  }
  req.log(
    `checked ${plural(scan.segments, 'WAL segment')} to replay for CREATE TABLESPACE in ${scan.seconds.toFixed(1)} s: ${scan.found.length === 0 ? 'none' : `${scan.found.length} found`}`,
  );
  const warnings = checkNewTablespaces(scan, { server: req.server, backupId: choice.backup.id, allow });
  for (const w of warnings) req.log(`warning: ${w}`);
  return warnings;
}

/**
 * As root, tar keeps each file's owner from the archive (the source server's postgres user); the
 * directories pgbk created itself get the same owner, or PostgreSQL could not enter them.
 */
async function giveToDataOwner(pgdata: string, more: readonly string[]): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const st = await stat(path.join(pgdata, 'PG_VERSION'));
  for (const p of [pgdata, ...more]) await chown(p, st.uid, st.gid);
}
