/**
 * `pgbk restore SERVER [ID|latest] --target-dir DIR --remote USER@HOST[:PORT] [--identity F]
 * [--known-hosts F] [--tablespace-dir DIR | OID=DIR …] [--wal-from ssh://… [--wal-identity F]
 * [--wal-known-hosts F] [--wal-remote-pgbk CMD]] [--db-pgbk CMD]`: restore onto the database host
 * over SSH (host key verified). The backup is chosen exactly as for a local restore; its data
 * streams into `tar -x` on the remote side (stored tars are sha256-checked as they stream; an
 * `ssh` backup's trees are sent as tar streams). Tablespaces go to their recorded locations (or
 * the --tablespace-dir mapping), and tablespace_map says so to PostgreSQL.
 *
 * WAL (wal-mode.ts): fetched on demand over SSH by `pgbk wal-fetch --from` on the database host
 * (with --wal-from, or derived from the cluster's own `pgbk wal-push --to` archive_command), or
 * else copied up front into DIR/pgbk_wal for a plain `cp` restore_command.
 *
 * Everything that can be refused is refused before the first write: backup choice and WAL
 * continuity, tablespaces created in the WAL to replay (src/restore/new-tablespaces.ts), a target
 * or tablespace directory that is not empty or that resolves into the catalog (remote-paths.ts),
 * flags, credentials files missing on the database host.
 */

import path from 'node:path';
import { backupDir } from '../catalog/layout.js';
import { readIdentity } from '../catalog/identity.js';
import { listArchivedWal, readArchivedWal } from '../catalog/wal-archive.js';
import { PgbkError } from '../errors.js';
import { mergeAutoConf } from '../pg/recovery-conf.js';
import { chooseFromCatalog, refuseNewTablespaces } from './restore.js';
import { clearInUse, markInUse } from './in-use.js';
import { describeTarget, targetSetting, type RecoveryTarget, type TargetAction, type TargetTimeline } from './target.js';
import { shellQuote } from '../lib/shell-quote.js';
import { SshTransport } from '../transport/ssh.js';
import type { Transport } from '../transport/transport.js';
import type { RemoteSpec } from './remote-args.js';
import { refuseRemoteOverlaps } from './remote-paths.js';
import { storedLayout } from './stored-layout.js';
import { formatTablespaceMap, parseTablespaceDirs, parseTablespaceMap, resolveTablespaceLocations, type TablespaceEntry } from './tablespace-map.js';
import { checkWalFlags, decideWalMode, fetchCommands, walToCopy, type WalMode } from './wal-mode.js';
import { plural } from '../lib/plural.js';

export { splitRemoteArgs, type RemoteSpec } from './remote-args.js';

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
  /** Write archive_mode = off (an inspection copy must not push into the production catalog). */
  readonly noArchive?: boolean;
  /** Restore although the WAL to replay creates tablespaces at the source's paths (src/restore/new-tablespaces.ts). */
  readonly allowNewTablespaces?: boolean;
  readonly log: (line: string) => void;
  readonly now: Date;
}

export type RemoteWalSummary =
  | { readonly mode: 'fetch'; readonly derivedFrom: 'flag' | 'archive_command'; readonly from: string; readonly restoreCommand: string }
  | { readonly mode: 'copy'; readonly why: string; readonly files: number; readonly first: string | undefined; readonly last: string | undefined };

export interface RemoteRestoreSummary {
  readonly server: string;
  readonly backupId: string;
  readonly reason: string;
  readonly target: string;
  readonly remote: string;
  readonly targetDir: string;
  readonly tablespaces: readonly TablespaceEntry[];
  readonly wal: RemoteWalSummary;
  /** Kept for consumers of formatVersion 1: WAL files copied up front (0 in fetch mode). */
  readonly walFilesSent: number;
  readonly seconds: number;
  readonly warnings: readonly string[];
}

async function readRemoteText(t: Transport, file: string): Promise<string> {
  const r = await t.run(['sh', '-c', '[ ! -e "$1" ] || cat -- "$1"', 'sh', file]);
  if (r.code !== 0) throw new PgbkError('NETWORK', `cannot read ${t.description}:${file}: ${r.stderr.trim()}`);
  return r.stdout.toString('utf8');
}

/** Absent or an empty directory; anything else is refused (nothing has been written yet). */
async function requireEmptyRemoteDir(t: Transport, dir: string, what: string, server: string): Promise<void> {
  const st = await t.stat(dir);
  if (st !== undefined && (st.type !== 'dir' || (await t.list(dir)).length > 0)) {
    throw new PgbkError('USAGE', `restore --remote: ${what} ${t.description}:${dir} exists and is not an empty directory`, { server });
  }
}

async function emptyRemoteDir(t: Transport, dir: string): Promise<void> {
  await t.run(['sh', '-c', 'cd -- "$1" 2>/dev/null && find . -mindepth 1 -delete', 'sh', dir]).catch(() => undefined);
}

export async function restoreRemote(req: RemoteRestoreRequest): Promise<RemoteRestoreSummary> {
  const started = Date.now();
  const { catalog, server } = req;
  const dir = req.targetDir;
  if (!path.isAbsolute(dir)) throw new PgbkError('USAGE', `restore --remote: --target-dir ${dir} must be absolute`);
  const walFlags = req.remote.wal ?? {};
  checkWalFlags(walFlags);
  const tsDirs = parseTablespaceDirs(req.remote.tablespaceDirs ?? []);
  const choice = await chooseFromCatalog(catalog, server, req.requested, req.target, req.timeline, req.now);
  const backup = choice.backup;
  for (const w of choice.warnings) req.log(`warning: ${w}`);
  const srcDir = backupDir(catalog, server, backup.id);
  const layout = await storedLayout(srcDir, backup);
  const recorded =
    layout.oids.length > 0 && [...layout.oids].some((o) => !tsDirs.byOid.has(o)) && tsDirs.root === undefined
      ? parseTablespaceMap((await layout.readMap()) ?? '')
      : [];
  const tablespaces = resolveTablespaceLocations(layout.oids, recorded, tsDirs, dir, backup.id);
  // The database host is usually the source's own host: a tablespace created in the WAL to replay
  // would be replayed into the source's directory there.
  const tsWarnings = await refuseNewTablespaces(req, choice);

  const t = await SshTransport.connect({
    host: req.remote.host,
    port: req.remote.port,
    user: req.remote.user,
    ...(req.remote.identityFile === undefined ? {} : { identityFile: req.remote.identityFile }),
    ...(req.remote.knownHosts === undefined ? {} : { knownHosts: req.remote.knownHosts }),
    server,
  });
  let mark: Awaited<ReturnType<typeof markInUse>> | undefined;
  const created: string[] = [];
  try {
    await refuseRemoteOverlaps(
      t,
      catalog,
      [{ what: '--target-dir', path: dir }, ...tablespaces.map((ts) => ({ what: `tablespace ${ts.oid} location`, path: ts.location }))],
      server,
    );
    await requireEmptyRemoteDir(t, dir, '--target-dir', server);
    for (const ts of tablespaces) await requireEmptyRemoteDir(t, ts.location, `tablespace ${ts.oid} location`, server);
    for (const [flag, file] of [
      ['--wal-identity', walFlags.identityFile],
      ['--wal-known-hosts', walFlags.knownHosts],
    ] as const) {
      if (file !== undefined && (await t.stat(file))?.type !== 'file') {
        throw new PgbkError('USAGE', `restore ${flag} ${file}: no such file on ${t.description}`, {
          server,
          hint: 'the WAL fetch runs on the database host: give paths there',
        });
      }
    }
    for (const d of [dir, ...tablespaces.map((x) => x.location)]) {
      const mk = await t.run(['mkdir', '-p', '-m', '700', '--', d]);
      if (mk.code !== 0) throw new PgbkError('CATALOG', `cannot create ${t.description}:${d}: ${mk.stderr.trim()}`, { server });
      await t.run(['chmod', '700', '--', d]);
      created.push(d);
    }
    mark = await markInUse(catalog, server, backup.id, req.lockTimeoutMs);
    req.log(`restoring backup ${backup.id} of ${server} onto ${t.description}:${dir}: ${choice.reason}`);
    await layout.sendData(t, dir);
    for (const ts of tablespaces) {
      req.log(`tablespace ${ts.oid} → ${t.description}:${ts.location}`);
      await layout.sendTablespace(t, ts.oid, ts.location);
    }
    // Runtime files of the source and anything an earlier pgbk restore left in the backup.
    await t.run(['rm', '-rf', '--', `${dir}/postmaster.pid`, `${dir}/postmaster.opts`, `${dir}/standby.signal`, `${dir}/.pgbk-spool`, `${dir}/pgbk_wal`]);
    if (tablespaces.length > 0) {
      // PostgreSQL recreates pg_tblspc/OID from tablespace_map when recovery starts; the links are
      // made now too so that the directory is consistent even before that.
      const links = tablespaces.map((ts) => `ln -sfn ${shellQuote(ts.location)} ${shellQuote(`${dir}/pg_tblspc/${ts.oid}`)}`).join(' && ');
      const r = await t.run([
        'sh',
        '-c',
        `mkdir -p ${shellQuote(`${dir}/pg_tblspc`)} && rm -rf ${tablespaces.map((ts) => shellQuote(`${dir}/pg_tblspc/${ts.oid}`)).join(' ')} && ${links}`,
      ]);
      if (r.code !== 0) throw new PgbkError('CATALOG', `cannot link tablespaces in ${t.description}:${dir}/pg_tblspc: ${r.stderr.trim()}`, { server });
      await t.writeFile(`${dir}/tablespace_map`, formatTablespaceMap(tablespaces), 0o600);
    }

    if (req.remote.user === 'root') {
      // tar as root keeps the owners recorded in the backup; the directories made here must get
      // the same owner, or PostgreSQL could not enter them.
      const ref = `${dir}/PG_VERSION`;
      await t.run(['chown', `--reference=${ref}`, '--', dir, ...tablespaces.map((x) => x.location)]);
    }
    const autoConf = `${dir}/postgresql.auto.conf`;
    const existingAuto = await readRemoteText(t, autoConf);
    const mode: WalMode = decideWalMode(
      walFlags,
      { postgresqlConf: await readRemoteText(t, `${dir}/postgresql.conf`), autoConf: existingAuto },
      catalog,
      server,
    );
    let wal: RemoteWalSummary;
    let commands: { restoreCommand: string; recoveryEndCommand: string };
    if (mode.kind === 'fetch') {
      commands = fetchCommands(mode);
      req.log(
        mode.source === 'flag'
          ? `WAL: fetched over SSH from ${mode.options.from} by restore_command on the database host (--wal-from)`
          : `WAL: fetched over SSH from ${mode.options.from}, settings derived from the backup's archive_command (pgbk wal-push --to)`,
      );
      wal = { mode: 'fetch', derivedFrom: mode.source, from: mode.options.from, restoreCommand: commands.restoreCommand };
    } else {
      req.log(`WAL: copying it up front into ${dir}/pgbk_wal: ${mode.why} (give --wal-from ssh://USER@HOST/CATALOG to fetch on demand instead)`);
      const identity = await readIdentity(catalog, server);
      const bounded = req.target.kind === 'lsn' || req.target.kind === 'immediate';
      const names = walToCopy(
        await listArchivedWal(catalog, server),
        choice.walFrom,
        bounded ? choice.walTo : undefined,
        identity?.walSegmentSize ?? 16 * 1024 * 1024,
      );
      const walDir = `${dir}/pgbk_wal`;
      await t.run(['mkdir', '-m', '700', '--', walDir]);
      for (const name of names) await t.writeFile(`${walDir}/${name}`, await readArchivedWal(catalog, server, name), 0o600);
      const segs = names.filter((n) => /^[0-9A-F]{24}$/.test(n));
      req.log(
        `sent ${plural(names.length, 'WAL file')} into ${walDir} (${segs.length === 0 ? 'no segments' : `${segs[0]}…${segs[segs.length - 1]}`}${bounded ? ', up to the target' : ', to the end of the archive'})`,
      );
      commands = { restoreCommand: 'cp pgbk_wal/%f %p', recoveryEndCommand: 'rm -rf pgbk_wal' };
      wal = { mode: 'copy', why: mode.why, files: names.length, first: segs[0], last: segs[segs.length - 1] };
    }
    const merged = mergeAutoConf(
      existingAuto,
      {
        ...commands,
        target: targetSetting(req.target),
        action: req.action,
        timeline: String(choice.targetTimeline),
        ...(req.noArchive === true ? { disableArchiving: true } : {}),
      },
      `pgbk restore --remote of server ${server}, backup ${backup.id}, at ${new Date().toISOString()}: target ${describeTarget(req.target)}`,
    );
    await t.writeFile(autoConf, merged, 0o600);
    await t.writeFile(`${dir}/recovery.signal`, '', 0o600);
    return {
      server,
      backupId: backup.id,
      reason: choice.reason,
      target: describeTarget(req.target),
      remote: t.description,
      targetDir: dir,
      tablespaces,
      wal,
      walFilesSent: wal.mode === 'copy' ? wal.files : 0,
      seconds: (Date.now() - started) / 1000,
      warnings: [...choice.warnings, ...tsWarnings],
    };
  } catch (err) {
    // Those directories were empty (or absent) before: leave them so again.
    for (const d of created) await emptyRemoteDir(t, d);
    throw err;
  } finally {
    if (mark !== undefined) await clearInUse(catalog, server, backup.id, mark, req.lockTimeoutMs).catch(() => undefined);
    await t.close();
  }
}
