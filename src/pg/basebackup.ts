/**
 * Driver for pg_basebackup (-Ft -X stream): the data files as tar archives plus backup_manifest; the
 * WAL comes from the archive. pg_basebackup writes into a private staging directory inside the
 * target (it insists on an empty directory, and the target already holds backup.json), and its
 * files are renamed into place only after it succeeded and the manifest checked out.
 *
 * Why -X stream when the WAL comes from the archive: with -X none the server waits at backup end
 * until archive_command has archived the last segment, polling for that once a second (PostgreSQL
 * 15's do_pg_backup_stop), which costs about a second per backup and makes a broken archive_command
 * hang the copy. With -X stream (or fetch) pg_basebackup sends BASE_BACKUP (WAIT false), so the
 * copy ends as soon as the data is sent. The streamed pg_wal.tar is dropped here: it duplicates what
 * the archive holds. Whether the backup's WAL did reach the archive is the caller's question (the
 * backup stays WAITING_FOR_WAL until it has). -X stream rather than fetch: fetch reads the WAL from
 * the server's pg_wal at the end, which a checkpoint during a long backup may already have recycled;
 * stream holds it with a temporary replication slot, as a default pg_basebackup run does.
 *
 * --no-sync: pg_basebackup would fsync every file it wrote, the dropped pg_wal.tar included, and
 * the caller reads each kept file once anyway to checksum it, so it fsyncs them in that pass
 * (backup/lifecycle.ts). What this driver makes durable itself is the renames into the target.
 */

import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { findExecutable } from '../lib/find-executable.js';
import { describeFreeSpace } from '../lib/free-space.js';
import { parseBackupManifest } from './backup-manifest.js';
import { clientToolConninfo } from './conninfo.js';
import { parseLsn } from './lsn.js';
import { binaryMajor, findPgBinary, majorOf } from './pg-bin.js';

export interface BaseBackupOptions {
  readonly conninfo: string;
  readonly targetDir: string;
  readonly compression: Compression;
  readonly fastCheckpoint: boolean;
  readonly label: string;
  /** server_version_num of the server: chooses the binary and server- vs client-side compression. */
  readonly pgVersion: number;
  /** Each stderr line (verbose messages, PostgreSQL's notices and, with `progress`, -P lines). */
  readonly onProgress?: (line: string) => void;
  /**
   * Pass -P. Off by default: it makes the server estimate the backup size first, an extra scan of
   * the data directory (turn it on for an interactive terminal only).
   */
  readonly progress?: boolean;
  readonly signal?: AbortSignal;
}

export interface BaseBackupResult {
  /** Timeline the backup started on (its WAL begins there). */
  readonly timeline: number;
  readonly beginLsn: string;
  readonly endLsn: string;
  /** Timeline holding endLsn; differs from `timeline` only for a standby that switched timelines. */
  readonly endTimeline: number;
  /** Files now in targetDir, relative names, sorted: base.tar.zst, <oid>.tar.zst, backup_manifest (not pg_wal.tar). */
  readonly files: readonly string[];
  /** Uncompressed data size from the manifest. */
  readonly dataBytes?: number;
}

const STAGING = '.pg_basebackup.partial';

/** pg_wal.tar, compressed or not: the WAL -X stream wrote beside the data archives. */
function isStreamedWalTar(name: string): boolean {
  return /^pg_wal\.tar(\.gz|\.zst|\.lz4)?$/.test(name);
}
const STDERR_KEEP = 64 * 1024;

/** --compress for this pg_basebackup / server pair. Server-side is fastest when both are 15+. */
export function compressionArgs(compression: Compression, clientMajor: number, serverMajor: number): string[] {
  switch (compression) {
    case 'none':
      return [];
    case 'zstd':
      if (clientMajor < 15) {
        throw new PgbkError('CONFIG', `compression zstd needs pg_basebackup 15 or newer (found ${clientMajor})`, {
          hint: 'install postgresql-client-15+ or set PGBK_PG_BINDIR, or use compression: gzip',
        });
      }
      // Level 1, as pgbk's WAL and ssh chunks: it compresses a data directory's tar about 2.5 %
      // less than zstd's default level 3 for half the CPU, and server-side that CPU is the
      // database host's. workers=2: measurably faster here.
      return serverMajor >= 15 ? ['--compress=server-zstd:level=1,workers=2'] : ['--compress=client-zstd:level=1'];
    case 'gzip':
      if (clientMajor < 15) return ['-Z', '1'];
      return serverMajor >= 15 ? ['--compress=server-gzip:1'] : ['--compress=client-gzip:1'];
    default: {
      const unknown: never = compression;
      throw new PgbkError('CONFIG', `unknown compression ${String(unknown)}`);
    }
  }
}

/** The lines worth showing from pg_basebackup's stderr when it failed. */
export function meaningfulStderr(stderr: string): string {
  const lines = stderr
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^\d+\/\d+ kB \(/.test(l));
  const errors = lines.filter((l) => /\b(error|fatal|detail|hint):/i.test(l));
  const chosen = errors.length > 0 ? errors : lines.slice(-3);
  return chosen.slice(-4).join('; ') || '(no output)';
}

/** "write-ahead log start point: 0/2000028 on timeline 1" and "… end point: 0/2000100". */
export function parseVerboseLsns(stderr: string): { start?: string; startTimeline?: number; end?: string } {
  const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/.exec(stderr);
  const end = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/.exec(stderr);
  return {
    ...(start?.[1] !== undefined ? { start: start[1], startTimeline: Number(start[2]) } : {}),
    ...(end?.[1] !== undefined ? { end: end[1] } : {}),
  };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

export interface RunOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

let setprivPath: string | null | undefined;

/** util-linux setpriv, if installed (Linux only). */
function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  if (process.platform !== 'linux') return setprivPath;
  setprivPath = findExecutable('setpriv', ['/usr/bin', '/bin']);
  return setprivPath;
}

/**
 * pg_basebackup is a separate program: when pgbk is SIGKILLed it would keep running, holding a
 * replication connection and writing a backup nobody will finish. Node cannot set
 * PR_SET_PDEATHSIG itself, so on Linux the child is started through util-linux
 * `setpriv --pdeathsig TERM`, which sets it and execs pg_basebackup (same PID): the kernel then
 * signals it when pgbk dies. Without setpriv it is spawned directly and may outlive a killed pgbk;
 * either way the next apply marks the backup FAILED (its owner is gone) and replaces it.
 */
export function dieWithParent(binary: string, args: readonly string[]): [string, string[]] {
  const setpriv = findSetpriv();
  return setpriv === null ? [binary, [...args]] : [setpriv, ['--pdeathsig', 'TERM', '--', binary, ...args]];
}

/** A running pg_basebackup (see spawnBaseBackup). */
export interface BaseBackupChild {
  /** Its stdout when asked for (`-D -`), else null. */
  readonly stdout: Readable | null;
  /** Resolves when it exited, with its status and the tail of its stderr. */
  readonly outcome: Promise<RunOutcome>;
  /** Stop it (by its handle, never by name); true if a signal was sent. */
  kill(): boolean;
}

/**
 * Start pg_basebackup (dying with pgbk, see dieWithParent), hand each stderr line to `onLine`, stop
 * it when `signal` aborts. A program that cannot start rejects `outcome` with a PgbkError.
 */
export function spawnBaseBackup(
  binary: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  opts: { readonly stdout: boolean; readonly onLine?: ((line: string) => void) | undefined; readonly signal?: AbortSignal | undefined },
): BaseBackupChild {
  const [command, argv] = dieWithParent(binary, args);
  const child = spawn(command, argv, { env, stdio: ['ignore', opts.stdout ? 'pipe' : 'ignore', 'pipe'] });
  const kill = (): boolean => (child.exitCode === null && child.signalCode === null ? child.kill('SIGTERM') : false);
  const onAbort = (): void => {
    kill();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let stderr = '';
  let pending = '';
  // Always a pipe (stdio above); typed nullable because stdout's mode is chosen at run time.
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEEP);
    pending += chunk;
    const lines = pending.split(/[\r\n]/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') opts.onLine?.(line);
  });
  const outcome = new Promise<RunOutcome>((resolve, reject) => {
    child.on('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(
        new PgbkError('PG', `cannot run ${binary}: ${err.message}`, {
          cause: err,
          hint: 'install the PostgreSQL client programs or set PGBK_PG_BINDIR',
        }),
      );
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (pending.trim() !== '') opts.onLine?.(pending);
      resolve({ code, signal, stderr });
    });
  });
  return { stdout: child.stdout, outcome, kill };
}

/**
 * The file pg_basebackup's "No space left on device" / "Disk quota exceeded" failure names, or
 * undefined when its stderr has neither. Any of its "could not <verb> [compressed|WAL] file "F""
 * lines counts: which one fires depends on what was being written when the disk filled (base.tar,
 * backup_manifest, the WAL stream). A WAL segment is named relative to pg_wal.tar; a message with
 * no file names the staging directory. (pg_basebackup's messages are matched in English, as the
 * LSN lines above are.)
 */
export function diskFullFile(stderr: string, staging: string): { file: string; why: string } | undefined {
  const m = /(No space left on device|Disk quota exceeded)/.exec(stderr);
  if (m === null) return undefined;
  const named = /could not [^"\n]*?file "([^"]+)"[^\n]*(?:No space left on device|Disk quota exceeded)/.exec(stderr)?.[1];
  const file = named === undefined ? staging : path.isAbsolute(named) ? named : `${path.join(staging, 'pg_wal.tar')} (${named})`;
  return { file, why: m[1]!.toLowerCase() };
}

/** The disk-full failure as an error naming the file and the free space, measured now — before the partial files are removed. */
async function diskFullError(stderr: string, staging: string): Promise<PgbkError | undefined> {
  const full = diskFullFile(stderr, staging);
  if (full === undefined) return undefined;
  return new PgbkError('CATALOG', `pg_basebackup: ${full.why} writing ${full.file}: ${await describeFreeSpace(staging)}`, {
    path: full.file,
    hint: 'free space on the catalog filesystem or move the catalog to a larger one; the partial backup files were removed',
  });
}

/** What every pgbk run of pg_basebackup is told, whatever it writes. */
export interface BaseBackupArgOptions {
  readonly conninfo: string;
  readonly label: string;
  readonly fastCheckpoint: boolean;
  readonly progress?: boolean;
}

/**
 * pg_basebackup's arguments and environment, the same for a local target and for stdout: tar
 * format, the WAL by `walMethod`, `extra` after the common part. No secret in the arguments,
 * which `ps` shows to every local user: the password travels in PGPASSWORD, sslpassword is refused.
 */
export function baseBackupArgs(
  opts: BaseBackupArgOptions,
  pgdata: string,
  walMethod: 'stream' | 'fetch',
  extra: readonly string[] = [],
): { readonly args: string[]; readonly env: NodeJS.ProcessEnv } {
  const { dbname, env } = clientToolConninfo(opts.conninfo);
  const args = [
    `--dbname=${dbname}`,
    `--pgdata=${pgdata}`,
    '--format=tar',
    `--wal-method=${walMethod}`,
    '--no-password',
    `--label=${opts.label}`,
    `--checkpoint=${opts.fastCheckpoint ? 'fast' : 'spread'}`,
    '--verbose',
    ...(opts.progress === true ? ['--progress'] : []),
    ...extra,
  ];
  return { args, env: { ...process.env, ...env } };
}

/** pg_basebackup's arguments for a backup into `staging` (see --no-sync at the top of this file). */
export function baseBackupCommand(
  opts: BaseBackupArgOptions & Pick<BaseBackupOptions, 'compression' | 'pgVersion'>,
  staging: string,
  clientMajor: number,
): { readonly args: string[]; readonly env: NodeJS.ProcessEnv } {
  return baseBackupArgs(opts, staging, 'stream', ['--no-sync', ...compressionArgs(opts.compression, clientMajor, majorOf(opts.pgVersion))]);
}

/**
 * Take a base backup into opts.targetDir. Errors: PgbkError PG/CONFIG; the target is left without
 * partial files. The returned files' names are durable in the target, their data not yet: the
 * caller fsyncs them (see --no-sync above).
 */
export async function runBaseBackup(opts: BaseBackupOptions): Promise<BaseBackupResult> {
  if (isAborted(opts.signal)) throw new PgbkError('PG', 'pg_basebackup cancelled before it started');
  const binary = findPgBinary('pg_basebackup', opts.pgVersion);
  const clientMajor = binaryMajor(binary);
  const staging = path.join(opts.targetDir, STAGING);
  const { args, env } = baseBackupCommand(opts, staging, clientMajor);

  await mkdir(opts.targetDir, { recursive: true });
  await rm(staging, { recursive: true, force: true }); // leftovers of a killed attempt
  try {
    const outcome = await spawnBaseBackup(binary, args, env, { stdout: false, onLine: opts.onProgress, signal: opts.signal }).outcome;
    // Re-read: the signal may have fired while pg_basebackup ran.
    if (isAborted(opts.signal)) throw new PgbkError('PG', 'pg_basebackup was cancelled');
    if (outcome.code !== 0) {
      const full = await diskFullError(outcome.stderr, staging);
      if (full !== undefined) throw full;
      const how = outcome.signal !== null ? `killed by ${outcome.signal}` : `exit ${String(outcome.code)}`;
      throw new PgbkError('PG', `pg_basebackup failed (${how}): ${meaningfulStderr(outcome.stderr)}`, { path: opts.targetDir });
    }
    const manifestFile = path.join(staging, 'backup_manifest');
    const manifest = parseBackupManifest(await readFile(manifestFile, 'utf8'), manifestFile);
    // Two independent reports of the same range must agree; if not, trust neither. (pg_basebackup
    // prints these lines only when it fetches or streams WAL itself, as it does here.)
    const verbose = parseVerboseLsns(outcome.stderr);
    if (verbose.start !== undefined && parseLsn(verbose.start) !== parseLsn(manifest.begin.startLsn)) {
      throw new PgbkError('PG', `pg_basebackup reported start ${verbose.start}, its manifest ${manifest.begin.startLsn}`, { path: manifestFile });
    }
    if (verbose.startTimeline !== undefined && verbose.startTimeline !== manifest.begin.timeline) {
      throw new PgbkError('PG', `pg_basebackup reported timeline ${verbose.startTimeline}, its manifest ${manifest.begin.timeline}`, { path: manifestFile });
    }
    if (verbose.end !== undefined && parseLsn(verbose.end) !== parseLsn(manifest.end.endLsn)) {
      throw new PgbkError('PG', `pg_basebackup reported end ${verbose.end}, its manifest ${manifest.end.endLsn}`, { path: manifestFile });
    }

    // The streamed WAL duplicates the archive (see the top of this file): not kept.
    const streamedWal = (await readdir(staging)).filter(isStreamedWalTar);
    for (const name of streamedWal) await rm(path.join(staging, name), { force: true });
    const files = (await readdir(staging)).sort();
    for (const name of files) {
      const dest = path.join(opts.targetDir, name);
      if (await exists(dest)) throw new PgbkError('CATALOG', `refusing to overwrite ${dest}`, { path: dest });
    }
    for (const name of files) await rename(path.join(staging, name), path.join(opts.targetDir, name));
    await rm(staging, { recursive: true, force: true });
    await fsyncDir(opts.targetDir);
    return {
      timeline: manifest.begin.timeline,
      beginLsn: manifest.begin.startLsn,
      endLsn: manifest.end.endLsn,
      endTimeline: manifest.end.timeline,
      files,
      dataBytes: manifest.dataBytes,
    };
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}
