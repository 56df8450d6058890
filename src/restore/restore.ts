/**
 * `pgbk restore`: rebuild a data directory from a stored base backup and configure PostgreSQL to
 * replay archived WAL up to the target — one restore, run against a TargetHost (host.ts): this
 * machine through LocalTransport, or the database host through SshTransport (`--remote`,
 * remote.ts). Everything that can be refused is refused before the first write: the backup choice
 * and WAL continuity (choose-backup.ts), the stored files and manifest (stored-layout.ts), the
 * target directories (target-dir.ts, real paths resolved on the host), tablespaces created in the
 * WAL to replay (wal-scan.ts), the WAL source's own checks (wal-setup.ts).
 *
 * Order of writes: mark the backup in use (while the WAL scan ends; removed again if it refuses) →
 * create/empty the directories (--force) → unpack the data directory and each tablespace
 * (sha256-checked as it streams) → link the tablespaces → pg_verifybackup against backup_manifest
 * (every file present with its size; CRC32C too with --verify-checksums) → runtime files,
 * tablespace_map, ownership, recovery configuration → unmark. On failure the directories are
 * emptied again (they were empty before) and the mark removed. Reading starts earlier: the data
 * directory's tar is fetched while the checks run (stored-layout.ts).
 */

import { createReadStream } from 'node:fs';
import path from 'node:path';
import { readBackups } from '../catalog/backups.js';
import { readIdentity } from '../catalog/identity.js';
import { listArchivedWal, readArchivedWal } from '../catalog/wal-archive.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { createProgress } from '../lib/progress.js';
import { plural } from '../lib/plural.js';
import { type ArchiveSetting, mergeAutoConf } from '../pg/recovery-conf.js';
import { chooseBackup, type Choice } from './choose-backup.js';
import { flushRestored, giveToDataOwner, linkTablespaces, removeRuntimeFiles, settleTablespaceMap, verifyAgainstManifest } from './finalize-pgdata.js';
import { localHost, readTextOn, where, type TargetHost } from './host.js';
import { clearInUse, markInUse } from './in-use.js';
import { refuseNewTablespaces } from './wal-scan.js';
import { storedLayout, type StoredLayout } from './stored-layout.js';
import { storedSource } from '../catalog/stored-source.js';
import type { TablespaceEntry } from './tablespace-map.js';
import { describeTarget, targetSetting, type RecoveryTarget, type TargetAction, type TargetTimeline } from './target.js';
import { emptyDir, inspectTargetDir, prepareTargetDir, refuseNested, type DirState } from './target-dir.js';
import { parseHistory, type HistoryEntry } from './timeline-history.js';
import { RestoreAborted } from './unpack.js';
import { catalogWal, type WalSetup } from './wal-setup.js';
import { mark as profileMark } from '../lib/profile.js';
import { shellQuote } from '../lib/shell-quote.js';

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
  /** What the restored server does about archiving (pg/recovery-conf.ts ArchiveSetting); default 'refuse'. */
  readonly archiving?: ArchiveSetting;
  /**
   * Restore even though the WAL to replay creates tablespaces (at the source's paths): only right
   * on another host than the source's (wal-scan.ts).
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

/** Where the tablespaces go, decided from the stored layout before the host is checked. */
export interface TablespacePlan {
  /** Directories to check and prepare besides the target directory (flag: how messages name them). */
  readonly dirs: readonly { readonly flag: string; readonly path: string }[];
  readonly locations: readonly TablespaceEntry[];
}

/** What one restore needs besides the host: the request, where tablespaces go, the WAL source. */
export interface RestoreJob<S> {
  readonly catalog: string;
  readonly server: string;
  readonly requested: string | undefined;
  /** Absolute, on the host. */
  readonly targetDir: string;
  readonly target: RecoveryTarget;
  readonly action: TargetAction;
  readonly timeline: TargetTimeline;
  readonly force: boolean;
  readonly verifyChecksums?: boolean;
  readonly archiving?: ArchiveSetting;
  readonly allowNewTablespaces?: boolean;
  readonly lockTimeoutMs: number;
  readonly log: (line: string) => void;
  readonly progressOut?: NodeJS.WritableStream;
  readonly showProgress?: boolean;
  readonly now: Date;
  readonly signal?: AbortSignal;
  placeTablespaces(layout: StoredLayout, backupId: string): Promise<TablespacePlan>;
  readonly wal: WalSetup<S>;
}

export interface RestoreOutcome<S> {
  readonly choice: Choice;
  readonly targetDir: string;
  readonly tablespaces: readonly TablespaceEntry[];
  readonly storedBytes: number;
  readonly files: number;
  readonly seconds: number;
  readonly warnings: readonly string[];
  /** pg_verifybackup checked the restored files against backup_manifest. */
  readonly verified: boolean;
  readonly wal: S;
}

/** Read what the choice needs from the catalog and choose. No writes. */
export async function chooseFromCatalog(
  catalog: string,
  server: string,
  requested: string | undefined,
  target: RecoveryTarget,
  timeline: TargetTimeline,
  now: Date,
): Promise<Choice> {
  // The three reads at once (one round trip to object storage instead of two); server.json's
  // absence is still the error reported first.
  const reads = Promise.all([readBackups(catalog, server), listArchivedWal(catalog, server)]);
  reads.catch(() => undefined);
  const identity = await readIdentity(catalog, server);
  if (identity === undefined) {
    throw new PgbkError('NOT_FOUND', `the catalog has nothing for server ${server} yet (no server.json)`, { server });
  }
  const [backups, wal] = await reads;
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
  // The copy is either a look beside a source that still runs, or the lost server's replacement.
  const start = `start PostgreSQL on ${dir} — with the start command above (a free port) beside a running source, or with its own settings (pg_ctl -D ${shellQuote(dir)} start) if it replaces a lost server; it replays archived WAL through pgbk wal-fetch`;
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

/** The one restore, onto `host`. */
export async function runRestore<S>(host: TargetHost, job: RestoreJob<S>): Promise<RestoreOutcome<S>> {
  const started = Date.now();
  const { catalog, server } = job;
  const t = host.transport;
  const dir = job.targetDir;
  profileMark('start');
  const choice = await chooseFromCatalog(catalog, server, job.requested, job.target, job.timeline, job.now);
  profileMark('choose');
  const backup = choice.backup;
  // The scan of the WAL to replay only reads: it runs beside the checks below, and its verdict is
  // awaited where it always was, before anything is written. Its lines are held until then, so a
  // refusal by the checks (a non-empty target) is not preceded by a report of the scan.
  const scanLines: string[] = [];
  const scanning = refuseNewTablespaces({ ...job, log: (line) => scanLines.push(line) }, choice);
  scanning.catch(() => undefined);
  const flushScanLines = (): void => {
    for (const line of scanLines.splice(0)) job.log(line);
  };

  // The stored files: the backup's directory, or its objects on object storage (stored-source.ts).
  const tree = backup.method === 'ssh' ? await (await import('../backup/ssh/stored-tree.js')).openStoredTree(catalog, server, backup.id) : undefined;
  const layout = await storedLayout(await storedSource(catalog, server, backup.id), backup, tree, { localTarget: host.local });
  try {
    const plan = await job.placeTablespaces(layout, backup.id);
    const dirs: DirState[] = [];
    for (const d of [{ flag: '--target-dir', path: dir }, ...plan.dirs]) dirs.push(await inspectTargetDir(d.path, job.force, catalog, d.flag, host));
    refuseNested(host, dirs);
    // Said once the target directories are known to be usable: a refusal of them is not preceded
    // by a line that reads as if the restore had started.
    for (const w of choice.warnings) job.log(`warning: ${w}`);
    job.log(`restoring backup ${backup.id} of ${server}${host.local ? '' : ` onto ${where(host, dir)}`}: ${choice.reason}`);
    profileMark('layout, tablespaces, target dirs');
    await job.wal.check(host, server);
    profileMark('wal check');
    // The in-use mark (a few round trips under the server lock) is made while the WAL scan still
    // runs; a refusal by the scan removes it again, and the target stays untouched either way: it
    // is written only once both are done. Only catalog reads run beside it (the scan, the early
    // fetch of the tar): as root the mark is written as the catalog's owner (asCatalogOwner
    // switches the process's effective user), who can read the catalog.
    const marking = markInUse(catalog, server, backup.id, job.lockTimeoutMs);
    marking.catch(() => undefined);
    let warnings: string[];
    try {
      warnings = [...choice.warnings, ...(await scanning.finally(flushScanLines))];
    } catch (err) {
      // The refusal is the news; a mark that cannot be removed only adds a warning.
      await marking
        .then(
          (m) => clearInUse(catalog, server, backup.id, m, job.lockTimeoutMs),
          () => undefined,
        )
        .catch((e: unknown) => job.log(`warning: could not remove the in-use mark of backup ${backup.id}: ${(e as Error).message}`));
      throw err;
    }
    profileMark('new tablespaces scan');
    const mark = await marking;
    profileMark('in-use mark');
    let storedBytes = 0;
    let files = 0;
    let verified = false;
    let wal: S;
    let walProbe: Promise<string | undefined> | undefined;
    try {
      for (const d of dirs) await prepareTargetDir(d, job.log, host);
      const locations = plan.locations;
      for (const l of locations) await t.mkdir(l.location, 0o700);
      const progress = createProgress(job.progressOut ?? process.stderr, job.showProgress === true, layout.totalBytes, `restoring ${backup.id}:`);
      for (const root of [undefined, ...locations]) {
        if (job.signal?.aborted === true)
          throw new RestoreAborted(`before unpacking ${root === undefined ? 'the data directory' : `tablespace ${root.oid}`}`, server);
        const before = storedBytes;
        const filesBefore = files;
        const r = await layout.unpack(root?.oid, {
          host,
          dir: root === undefined ? dir : root.location,
          onProgress: (b, f) => progress.update(before + b, filesBefore + f),
          ...(job.signal === undefined ? {} : { signal: job.signal }),
        });
        storedBytes += r.storedBytes;
        files += r.files;
      }
      progress.finish();
      profileMark('unpack');
      // Beside pg_verifybackup and the flush (it reads the catalog as another user, writes nothing
      // here): awaited before the restore reports, failed or not.
      walProbe = job.wal.probe?.(host, dir, choice).catch((err: unknown) => `could not check restore_command: ${(err as Error).message}`);
      // pg_verifybackup and what follows do not watch the signal: stop before them.
      if (job.signal?.aborted === true) throw new RestoreAborted('before pg_verifybackup', server);
      if (layout.counted !== undefined) {
        storedBytes = layout.counted.bytes;
        files = layout.counted.files;
      }
      const fullCheck = job.verifyChecksums === true;
      job.log(
        `unpacked ${plural(layout.storedFiles, 'stored file')}, ${files} entries; verifying against backup_manifest${fullCheck ? ' with checksums' : ''}`,
      );
      await linkTablespaces(host, dir, locations);
      if (layout.manifest !== undefined) {
        // Over SSH pg_verifybackup reads a copy in the data directory (it ignores that name there).
        const manifest = host.local ? layout.manifest : `${dir}/backup_manifest`;
        if (!host.local) await t.writeFile(manifest, createReadStream(layout.manifest), 0o600);
        verified = await verifyAgainstManifest(host, dir, manifest, backup.pgVersion ?? 150000, server, { checksums: fullCheck });
        if (!verified) {
          const w = `pg_verifybackup was not found on ${t.description}: the restored files were not checked against backup_manifest (each stored file did match its recorded sha256)`;
          job.log(`warning: ${w}`);
          warnings.push(w);
        }
      }
      profileMark('pg_verifybackup');
      await removeRuntimeFiles(host, dir);
      const mapWritten = await settleTablespaceMap(host, dir, locations);
      const asRoot = (await t.userId()) === 0;
      if (asRoot) await giveToDataOwner(host, dir, [...new Set([...dirs.map((d) => d.path), ...locations.map((l) => l.location)])]);
      const autoConf = `${dir}/postgresql.auto.conf`;
      const existingAuto = await readTextOn(host, autoConf);
      const configured = await job.wal.configure(
        host,
        dir,
        { postgresqlConf: await readTextOn(host, `${dir}/postgresql.conf`), autoConf: existingAuto },
        choice,
      );
      wal = configured.summary;
      const unreachable = await walProbe;
      if (unreachable !== undefined) {
        job.log(`warning: ${unreachable}`);
        warnings.push(unreachable);
      }
      const merged = mergeAutoConf(
        existingAuto,
        {
          ...configured.commands,
          target: targetSetting(job.target),
          action: job.action,
          timeline: String(choice.targetTimeline),
          archiving: job.archiving ?? 'refuse',
          pgVersion: backup.pgVersion,
        },
        `pgbk restore${host.local ? '' : ' --remote'} of server ${server}, backup ${backup.id}, at ${new Date().toISOString()}: target ${describeTarget(job.target)}`,
      );
      await t.writeFile(autoConf, merged, 0o600);
      await t.writeFile(`${dir}/recovery.signal`, '', 0o600);
      // Written just now (0600, as whoever pgbk runs as there): PostgreSQL, running as the data
      // directory's owner, must read them.
      if (asRoot) {
        const written = [autoConf, `${dir}/recovery.signal`, ...mapWritten, ...configured.wrote];
        await giveToDataOwner(host, dir, written, true);
      }
      profileMark('configure');
      await flushRestored(host, [dir, ...locations.map((l) => l.location)], server);
      profileMark('flush');
    } catch (err) {
      const e = toPgbkError(err, { server });
      await walProbe; // never rejects; its process must be gone before the directories are emptied
      job.log(`restore failed; emptying ${dirs.map((d) => where(host, d.path)).join(' and ')}`);
      for (const d of dirs) await emptyDir(d.path, host);
      throw e;
    } finally {
      // Not beside the steps after unpacking: as root, a catalog write runs as the catalog's owner
      // (catalog/owner.ts asCatalogOwner switches the process's effective user), and those steps
      // write into the target as root.
      await clearInUse(catalog, server, backup.id, mark, job.lockTimeoutMs).catch((err: unknown) => {
        job.log(`warning: could not remove the in-use mark of backup ${backup.id}: ${(err as Error).message}`);
      });
    }
    return {
      choice,
      targetDir: dir,
      tablespaces: plan.locations,
      storedBytes,
      files,
      seconds: (Date.now() - started) / 1000,
      warnings,
      verified,
      wal,
    };
  } finally {
    await layout.dispose();
  }
}

/** `pgbk restore` on this host: tablespaces beside the data directory, WAL read from the catalog. */
export async function restoreBackup(req: RestoreRequest): Promise<RestoreSummary> {
  const dir = path.resolve(req.targetDir);
  const tsRoot = path.resolve(req.tablespaceDir ?? `${dir}_tablespaces`);
  const out = await runRestore(localHost(), {
    ...req,
    targetDir: dir,
    placeTablespaces: async (layout) => ({
      dirs: layout.oids.length > 0 ? [{ flag: '--tablespace-dir', path: tsRoot }] : [],
      locations: layout.oids.map((oid) => ({ oid, location: path.join(tsRoot, oid) })),
    }),
    wal: catalogWal({ node: req.nodePath, cli: req.cliPath, configPath: req.configPath, server: req.server, catalog: req.catalog }),
  });
  const { choice } = out;
  return {
    server: req.server,
    backupId: choice.backup.id,
    reason: choice.reason,
    target: describeTarget(req.target),
    targetTimeline: choice.targetTimeline,
    action: req.target.kind === 'latest' ? 'promote-at-end-of-wal' : req.action,
    targetDir: dir,
    tablespaces: out.tablespaces,
    wal: { from: choice.walFrom, to: choice.walTo, segments: choice.segmentCount },
    storedBytes: out.storedBytes,
    files: out.files,
    seconds: out.seconds,
    warnings: out.warnings,
    nextStep: nextStep(dir, req.target, req.action),
  };
}
