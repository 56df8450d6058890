/**
 * `pgbk restore SERVER [ID|latest] --target-dir DIR --remote USER@HOST[:PORT] [--identity F]
 * [--known-hosts F]`: restore onto the database host over SSH (host key verified). The backup is
 * chosen exactly as for a local restore; its data streams into `tar -x` on the remote side
 * (stored tars are sha256-checked as they stream; an `ssh` backup's data/ tree is sent as one tar
 * stream). WAL is prefetched: every archived segment the recovery may need (from the backup's
 * begin WAL to the end of the archive, plus timeline history files) is decompressed, verified
 * against SHA256SUMS and written durably into DIR/pgbk_wal/, so restore_command is a plain local
 * `cp` on the database host — it needs neither pgbk nor credentials for the backup host, and no
 * per-segment SSH handshake. recovery_end_command removes pgbk_wal/ once recovery is over.
 * Tablespaces are refused for now (the remote side would need their locations).
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { backupDir } from '../catalog/layout.js';
import { listArchivedWal, readArchivedWal } from '../catalog/wal-archive.js';
import { compressionOfFile } from '../catalog/compress.js';
import { PgbkError } from '../errors.js';
import { formatLsn } from '../pg/lsn.js';
import type { BackupRecord } from '../plan/types.js';
import { mergeAutoConf, type RecoveryTargetSetting } from '../pg/recovery-conf.js';
import { chooseFromCatalog } from '../restore/restore.js';
import { clearInUse, markInUse } from '../restore/in-use.js';
import { describeTarget, formatPgTime, targetSetting, type RecoveryTarget, type TargetAction, type TargetTimeline } from '../restore/target.js';
import { SshTransport } from '../transport/ssh.js';
import type { Transport } from '../transport/transport.js';

export interface RemoteSpec {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly identityFile?: string;
  readonly knownHosts?: string;
}

/** Take --remote/--identity/--known-hosts out of restore's arguments. */
export function splitRemoteArgs(args: readonly string[]): { rest: string[]; remote: RemoteSpec | undefined } {
  const rest: string[] = [];
  let remote: string | undefined;
  let identityFile: string | undefined;
  let knownHosts: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const take = (): string => {
      const v = args[i + 1];
      if (v === undefined) throw new PgbkError('USAGE', `restore: ${a} needs a value`);
      i++;
      return v;
    };
    if (a === '--remote') remote = take();
    else if (a === '--identity') identityFile = take();
    else if (a === '--known-hosts') knownHosts = take();
    else rest.push(a);
  }
  if (remote === undefined) {
    if (identityFile !== undefined || knownHosts !== undefined) throw new PgbkError('USAGE', 'restore: --identity and --known-hosts go with --remote');
    return { rest, remote: undefined };
  }
  const m = /^([^@\s]+)@(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$/.exec(remote);
  if (m === null || m[1] === undefined || m[2] === undefined) throw new PgbkError('USAGE', `restore: --remote ${remote}: expected USER@HOST[:PORT]`);
  return {
    rest,
    remote: {
      user: m[1],
      host: m[2].replace(/^\[|\]$/g, ''),
      port: m[3] === undefined ? 22 : Number(m[3]),
      ...(identityFile === undefined ? {} : { identityFile: path.resolve(identityFile) }),
      ...(knownHosts === undefined ? {} : { knownHosts: path.resolve(knownHosts) }),
    },
  };
}

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
  readonly log: (line: string) => void;
  readonly now: Date;
}

export interface RemoteRestoreSummary {
  readonly server: string;
  readonly backupId: string;
  readonly reason: string;
  readonly target: string;
  readonly remote: string;
  readonly targetDir: string;
  readonly walFilesSent: number;
  readonly seconds: number;
}


/** Stream `source` (optionally through a local decompressor) into `tar -x` in dir on the remote side. */
async function streamTarInto(t: Transport, dir: string, source: NodeJS.ReadableStream, decompress: readonly string[] | undefined, server: string): Promise<void> {
  const remote = t.exec(['tar', '-C', dir, '-xf', '-']);
  let err = '';
  remote.stderr.setEncoding('utf8');
  remote.stderr.on('data', (d: string) => (err += d));
  remote.stdout.resume();
  remote.stdin.on('error', () => undefined);
  let localDone: Promise<number | null> = Promise.resolve(0);
  if (decompress !== undefined) {
    const [cmd, ...args] = decompress;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.on('error', () => undefined);
    source.pipe(child.stdin);
    child.stdout.pipe(remote.stdin);
    localDone = new Promise((r) => child.once('close', (code) => r(code)));
  } else {
    source.pipe(remote.stdin);
  }
  const [status, local] = await Promise.all([remote.done, localDone]);
  if (status.code !== 0 || local !== 0) {
    throw new PgbkError(status.code === null ? 'NETWORK' : 'CATALOG', `unpacking into ${t.description}:${dir} failed (${status.code === null ? 'connection lost' : `tar exit ${status.code}`}${local !== 0 ? `, local exit ${String(local)}` : ''}): ${err.trim()}`, { server });
  }
}

function decompressorFor(file: string): readonly string[] | undefined {
  const c = compressionOfFile(file);
  if (c === 'zstd') return ['zstd', '-d', '-c', '-q'];
  if (c === 'gzip') return ['gzip', '-d', '-c'];
  return undefined;
}

async function sendData(t: Transport, srcDir: string, backup: BackupRecord, dir: string): Promise<void> {
  const { server, id } = backup;
  const checksums = backup.checksums ?? {};
  if (backup.method === 'ssh') {
    const { checkSshBackup } = await import('../backup-ssh/restore-tree.js');
    const layout = await checkSshBackup(srcDir, backup);
    if (layout.tablespaceOids.length > 0) throw new PgbkError('USAGE', `backup ${id} has tablespaces: restore --remote does not handle them yet; restore locally and copy`, { server });
    const { sshBackupTarStream } = await import('../backup-ssh/restore-tree.js');
    const tar = sshBackupTarStream(srcDir, 'data', server);
    await Promise.all([streamTarInto(t, dir, tar.stream, undefined, server), tar.done]);
    return;
  }
  const names = (await readdir(srcDir)).filter((n) => /^(base|\d+)\.tar(\.zst|\.gz)?$/.test(n)).sort();
  if (names.some((n) => !n.startsWith('base.'))) throw new PgbkError('USAGE', `backup ${id} has tablespaces: restore --remote does not handle them yet; restore locally and copy`, { server });
  const base = names[0];
  if (base === undefined) throw new PgbkError('CATALOG', `backup ${id} has no base.tar`, { server, path: srcDir });
  const want = checksums[base];
  if (want === undefined) throw new PgbkError('CATALOG', `backup ${id}: ${base} has no recorded checksum`, { server });
  const hash = createHash('sha256');
  const src = createReadStream(path.join(srcDir, base), { highWaterMark: 1 << 20 });
  src.on('data', (d) => hash.update(d as Buffer));
  await streamTarInto(t, dir, src, decompressorFor(base), server);
  if (hash.digest('hex') !== want) {
    throw new PgbkError('CATALOG', `backup ${id}: ${base} does not match its recorded sha256`, { server, path: path.join(srcDir, base) });
  }
}

async function readRemoteText(t: Transport, file: string): Promise<string> {
  const r = await t.run(['sh', '-c', '[ ! -e "$1" ] || cat -- "$1"', 'sh', file]);
  if (r.code !== 0) throw new PgbkError('NETWORK', `cannot read ${t.description}:${file}: ${r.stderr.trim()}`);
  return r.stdout.toString('utf8');
}

export async function restoreRemote(req: RemoteRestoreRequest): Promise<RemoteRestoreSummary> {
  const started = Date.now();
  const { catalog, server } = req;
  if (!path.isAbsolute(req.targetDir)) throw new PgbkError('USAGE', `restore --remote: --target-dir ${req.targetDir} must be absolute`);
  const choice = await chooseFromCatalog(catalog, server, req.requested, req.target, req.timeline, req.now);
  const backup = choice.backup;
  for (const w of choice.warnings) req.log(`warning: ${w}`);
  const t = await SshTransport.connect({ ...req.remote, server });
  const dir = req.targetDir;
  let mark: Awaited<ReturnType<typeof markInUse>> | undefined;
  let created = false;
  try {
    const st = await t.stat(dir);
    if (st !== undefined && (st.type !== 'dir' || (await t.list(dir)).length > 0)) {
      throw new PgbkError('USAGE', `restore --remote: ${t.description}:${dir} exists and is not an empty directory`, { server });
    }
    const mk = await t.run(['mkdir', '-p', '-m', '700', '--', dir]);
    if (mk.code !== 0) throw new PgbkError('CATALOG', `cannot create ${t.description}:${dir}: ${mk.stderr.trim()}`, { server });
    created = true;
    mark = await markInUse(catalog, server, backup.id, req.lockTimeoutMs);
    req.log(`restoring backup ${backup.id} of ${server} onto ${t.description}:${dir}: ${choice.reason}`);
    const srcDir = backupDir(catalog, server, backup.id);
    await sendData(t, srcDir, backup, dir);
    await t.run(['rm', '-f', '--', `${dir}/postmaster.pid`, `${dir}/postmaster.opts`, `${dir}/standby.signal`]);

    // Prefetch every WAL file recovery may ask for.
    const walDir = `${dir}/pgbk_wal`;
    await t.run(['mkdir', '-m', '700', '--', walDir]);
    const archived = await listArchivedWal(catalog, server);
    const wanted = [...archived.histories, ...archived.segments.filter((s) => s >= (backup.beginWal ?? ''))];
    for (const name of wanted) await t.writeFile(`${walDir}/${name}`, await readArchivedWal(catalog, server, name), 0o600);
    req.log(`sent ${wanted.length} WAL file(s) into ${walDir}`);

    const autoConf = `${dir}/postgresql.auto.conf`;
    const merged = mergeAutoConf(
      await readRemoteText(t, autoConf),
      {
        restoreCommand: 'cp pgbk_wal/%f %p',
        recoveryEndCommand: 'rm -rf pgbk_wal',
        target: targetSetting(req.target),
        action: req.action,
        timeline: String(choice.targetTimeline),
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
      walFilesSent: wanted.length,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (err) {
    // The directory was empty (or absent) before: leave it so again.
    if (created) await t.run(['sh', '-c', 'cd -- "$1" && find . -mindepth 1 -delete', 'sh', dir]).catch(() => undefined);
    throw err;
  } finally {
    if (mark !== undefined) await clearInUse(catalog, server, backup.id, mark, req.lockTimeoutMs).catch(() => undefined);
    await t.close();
  }
}
