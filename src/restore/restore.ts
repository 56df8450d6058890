/**
 * `pgbk restore`: rebuild a data directory from a stored base backup and configure PostgreSQL to
 * replay archived WAL up to the target — one restore, run against a TargetHost (host.ts): this
 * machine through LocalTransport, or the database host through SshTransport (`--remote`,
 * remote.ts). Everything that can be refused is refused before the first write: the backup choice
 * and WAL continuity (choose-backup.ts), the stored files and manifest (stored-layout.ts), the
 * target directories (target-dir.ts, real paths resolved on the host), the WAL source's own checks
 * (wal-setup.ts). Tablespaces created in the WAL to replay (new-tablespaces.ts) are refused before
 * the first write too when the target directories hold anything; when they are all new, that scan
 * runs beside the unpack, and its refusal stops it and removes them again: nothing is left.
 *
 * Order of writes: mark the backup in use → create/empty the directories (--force) → unpack the
 * data directory and each tablespace (sha256-checked as it streams) → the WAL scan's verdict →
 * link the tablespaces → pg_verifybackup against backup_manifest
 * (every file present with its size; CRC32C too with --verify-checksums) → runtime files,
 * tablespace_map, ownership, recovery configuration → unmark. On failure the directories are
 * emptied again (they were empty before) and the mark removed. Reading starts earlier: the data
 * directory's tar is fetched while the checks run (stored-layout.ts).
 */

import { createReadStream } from 'node:fs';
import path from 'node:path';
import { toPgbkError } from '../errors.js';
import { createProgress } from '../lib/progress.js';
import { plural } from '../lib/plural.js';
import { type ArchiveSetting, mergeAutoConf } from '../pg/recovery-conf.js';
import type { Choice } from './choose-backup.js';
import { chooseFromCatalog } from './choose-from-catalog.js';
import { flushRestored, giveToDataOwner, linkTablespaces, removeRuntimeFiles, settleTablespaceMap, verifyAgainstManifest } from './finalize-pgdata.js';
import { localHost, readTextOn, where, type TargetHost } from './host.js';
import { clearInUse, markInUse, type InUseMark } from './in-use.js';
import { storedLayout, type StoredLayout } from './stored-layout.js';
import { storedSource } from '../catalog/stored-source.js';
import { repositoryKindOf } from '../catalog/open.js';
import type { TablespaceEntry } from './tablespace-map.js';
import { describeTarget, targetSetting, type RecoveryTarget, type TargetAction, type TargetTimeline } from './target.js';
import { emptyDir, inspectTargetDir, prepareTargetDir, refuseNested, type DirState } from './target-dir.js';
import { RestoreAborted } from './unpack.js';
import { TablespaceScanRun } from './scan-beside.js';
import { catalogWal, type WalSetup } from './wal-setup.js';
import { mark as profileMark } from '../lib/profile.js';
import { nextStep } from './next-step.js';

export { chooseFromCatalog } from './choose-from-catalog.js';

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

  // The stored files: the backup's directory, or its objects on object storage (stored-source.ts).
  const tree = backup.method === 'ssh' ? await (await import('../backup/ssh/stored-tree.js')).openStoredTree(catalog, server, backup.id) : undefined;
  // The in-use mark (a few round trips under the server lock) is made beside read-only work, and a
  // refusal before anything is written removes it again. On a local catalog as root it is written
  // as the catalog's owner (asCatalogOwner switches the process's effective user), so only catalog
  // reads may run beside it: it starts after the target checks. On object storage nothing switches
  // (catalog/owner.ts): it starts now, beside opening the layout and the checks.
  let marking: Promise<InUseMark> | undefined;
  const startMark = (): Promise<InUseMark> => {
    const p = markInUse(catalog, server, backup.id, job.lockTimeoutMs);
    p.catch(() => undefined);
    return p;
  };
  const dropMark = (): Promise<void> =>
    (marking ?? Promise.reject(new Error('no mark')))
      .then(
        (m) => clearInUse(catalog, server, backup.id, m, job.lockTimeoutMs),
        () => undefined,
      )
      // The refusal is the news; a mark that cannot be removed only adds a warning.
      .catch((e: unknown) => job.log(`warning: could not remove the in-use mark of backup ${backup.id}: ${(e as Error).message}`));
  const objectStorage = repositoryKindOf(catalog) !== 'posix';
  if (objectStorage) marking = startMark();
  // The WAL scan (below): from object storage its reads are round trips, which overlap these
  // checks' own; a local scan is CPU on this thread, which the checks need, so it starts later.
  let scan = objectStorage ? new TablespaceScanRun(job, choice) : undefined;
  let layout: StoredLayout;
  try {
    layout = await storedLayout(await storedSource(catalog, server, backup.id), backup, tree, { localTarget: host.local });
  } catch (err) {
    await dropMark();
    throw err;
  }
  try {
    let plan: TablespacePlan;
    const dirs: DirState[] = [];
    let beside: boolean;
    const warnings = [...choice.warnings];
    try {
      plan = await job.placeTablespaces(layout, backup.id);
      for (const d of [{ flag: '--target-dir', path: dir }, ...plan.dirs]) dirs.push(await inspectTargetDir(d.path, job.force, catalog, d.flag, host));
      refuseNested(host, dirs);
      // Said once the target directories are known to be usable: a refusal of them is not preceded
      // by a line that reads as if the restore had started.
      for (const w of choice.warnings) job.log(`warning: ${w}`);
      job.log(`restoring backup ${backup.id} of ${server}${host.local ? '' : ` onto ${where(host, dir)}`}: ${choice.reason}`);
      profileMark('layout, tablespaces, target dirs');
      await job.wal.check(host, server);
      profileMark('wal check');
      // The scan of the WAL to replay (new-tablespaces.ts) only reads, and a refusal by it must cost
      // nothing that existed. When every directory is new and its parent exists, it runs beside the
      // unpack, its verdict is taken before the restore goes on, and a refusal stops the unpack and
      // removes the directories again: nothing is left. Otherwise (--force would delete entries, an
      // existing directory, parents to create) its verdict comes before anything is written, while
      // the mark is made.
      beside = dirs.every((d) => !d.exists && d.parentExists === true);
      marking ??= startMark();
      if (!beside) {
        warnings.push(...(await (scan ?? new TablespaceScanRun(job, choice)).verdict(job.log)));
        scan = undefined;
        profileMark('new tablespaces scan');
      }
    } catch (err) {
      await dropMark();
      throw err;
    }
    const mark = await marking;
    profileMark('in-use mark');
    let storedBytes = 0;
    let files = 0;
    let verified = false;
    let wal: S;
    // The unpack stops on the caller's abort, and on the refusal of a scan beside it.
    const stopUnpack = new AbortController();
    const onAbort = (): void => stopUnpack.abort();
    job.signal?.addEventListener('abort', onAbort, { once: true });
    let refusal: { readonly err: unknown } | undefined;
    const stopOnRefusal = (run: TablespaceScanRun): void =>
      run.onRefusal((err) => {
        refusal = { err };
        stopUnpack.abort();
      });
    if (scan !== undefined) stopOnRefusal(scan);
    try {
      for (const d of dirs) await prepareTargetDir(d, job.log, host);
      const locations = plan.locations;
      for (const l of locations) await t.mkdir(l.location, 0o700);
      const progress = createProgress(job.progressOut ?? process.stderr, job.showProgress === true, layout.totalBytes, `restoring ${backup.id}:`);
      for (const root of [undefined, ...locations]) {
        if (job.signal?.aborted === true || refusal !== undefined)
          throw new RestoreAborted(`before unpacking ${root === undefined ? 'the data directory' : `tablespace ${root.oid}`}`, server);
        const before = storedBytes;
        const filesBefore = files;
        const unpacking = layout.unpack(root?.oid, {
          host,
          dir: root === undefined ? dir : root.location,
          onProgress: (b, f) => progress.update(before + b, filesBefore + f),
          signal: stopUnpack.signal,
        });
        if (beside && scan === undefined) {
          // A local scan, started once the unpack has: its decoding uses what the unpack leaves idle.
          scan = new TablespaceScanRun(job, choice);
          stopOnRefusal(scan);
        }
        const r = await unpacking;
        storedBytes += r.storedBytes;
        files += r.files;
      }
      progress.finish();
      profileMark('unpack');
      if (scan !== undefined) {
        try {
          warnings.push(...(await scan.verdict(job.log)));
        } catch (err) {
          refusal ??= { err };
          throw err;
        }
        profileMark('new tablespaces scan');
      }
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
      const e = toPgbkError(refusal?.err ?? err, { server });
      if (refusal !== undefined) {
        await scan?.verdict(job.log).catch(() => undefined); // its lines; every directory was new
        job.log(`refused by the WAL scan; removing ${dirs.map((d) => where(host, d.path)).join(' and ')} again`);
        await host.transport.remove(dirs.map((d) => d.path)).catch(() => undefined);
        throw e;
      }
      job.log(`restore failed; emptying ${dirs.map((d) => where(host, d.path)).join(' and ')}`);
      for (const d of dirs) await emptyDir(d.path, host);
      throw e;
    } finally {
      job.signal?.removeEventListener('abort', onAbort);
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
    wal: catalogWal({ node: req.nodePath, cli: req.cliPath, configPath: req.configPath, server: req.server }),
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
