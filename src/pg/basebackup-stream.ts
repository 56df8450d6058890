/**
 * pg_basebackup writing one tar archive to its stdout (`-D - -Ft`), for catalogs on object storage:
 * the caller streams the bytes into a multipart upload, nothing is staged on local disk.
 *
 * What `-D -` implies in PostgreSQL 15, and why the options are what they are:
 * - one archive only: a cluster with tablespaces besides pg_default/pg_global is refused by
 *   pg_basebackup ("can only write single tablespace to stdout"); the caller checks first;
 * - `-X stream` is refused with stdout, so the WAL is `-X fetch`: the server appends the backup's
 *   WAL range to the archive (pg_wal/ in base.tar) and, as with stream, does not wait for the
 *   archiver at backup end (BASE_BACKUP … WAIT false). A segment the server recycled before the end
 *   of a long backup fails the backup ("requested WAL segment … has already been removed"); it is
 *   retried by the next apply;
 * - the backup_manifest is injected by pg_basebackup as the archive's last member, which it can
 *   only do in an uncompressed stream: the server sends plain tar and the caller compresses.
 */

import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { PgbkError } from '../errors.js';
import { dieWithParent, meaningfulStderr } from './basebackup.js';
import { clientToolConninfo } from './conninfo.js';
import { findPgBinary } from './pg-bin.js';

export interface StreamBaseBackupOptions {
  readonly conninfo: string;
  readonly fastCheckpoint: boolean;
  readonly label: string;
  readonly pgVersion: number;
  readonly progress?: boolean;
  /** Each stderr line (verbose messages, notices, -P lines). */
  readonly onLine?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface StreamedBaseBackup {
  /** The tar archive (data directory, WAL range, backup_manifest last). */
  readonly stdout: Readable;
  /** Resolves when pg_basebackup exited 0; rejects naming its error otherwise. */
  readonly done: Promise<void>;
  /** Stop it (by its handle), e.g. when the upload failed. */
  kill(): void;
  /** Whether kill() stopped it (its failure is then the consequence of another one). */
  killed(): boolean;
}

const STDERR_KEEP = 64 * 1024;

/** pg_basebackup's arguments for a tar archive on stdout; no secret on the command line. */
export function streamBaseBackupCommand(opts: StreamBaseBackupOptions): { readonly args: string[]; readonly env: NodeJS.ProcessEnv } {
  const { dbname, env } = clientToolConninfo(opts.conninfo);
  const args = [
    `--dbname=${dbname}`,
    '--pgdata=-',
    '--format=tar',
    '--wal-method=fetch',
    '--no-password',
    `--label=${opts.label}`,
    `--checkpoint=${opts.fastCheckpoint ? 'fast' : 'spread'}`,
    '--verbose',
    ...(opts.progress === true ? ['--progress'] : []),
  ];
  return { args, env: { ...process.env, ...env } };
}

export function streamBaseBackup(opts: StreamBaseBackupOptions): StreamedBaseBackup {
  if (opts.signal?.aborted === true) throw new PgbkError('PG', 'pg_basebackup cancelled before it started');
  const binary = findPgBinary('pg_basebackup', opts.pgVersion);
  const { args, env } = streamBaseBackupCommand(opts);
  const [command, argv] = dieWithParent(binary, args);
  const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let killedByUs = false;
  const kill = (): void => {
    // By PID, through the ChildProcess handle: never by name.
    if (child.exitCode === null && child.signalCode === null) killedByUs = child.kill('SIGTERM');
  };
  opts.signal?.addEventListener('abort', kill, { once: true });
  let stderr = '';
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEEP);
    pending += chunk;
    const lines = pending.split(/[\r\n]/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') opts.onLine?.(line);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => {
      reject(new PgbkError('PG', `cannot run ${binary}: ${err.message}`, { cause: err, hint: 'install the PostgreSQL client programs or set PGBK_PG_BINDIR' }));
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', kill);
      if (pending.trim() !== '') opts.onLine?.(pending);
      if (opts.signal?.aborted === true) reject(new PgbkError('PG', 'pg_basebackup was cancelled'));
      else if (code === 0) resolve();
      else
        reject(new PgbkError('PG', `pg_basebackup failed (${signal !== null ? `killed by ${signal}` : `exit ${String(code)}`}): ${meaningfulStderr(stderr)}`));
    });
  });
  // The caller awaits it after the upload; a rejection before that must not be "unhandled".
  done.catch(() => undefined);
  return { stdout: child.stdout, done, kill, killed: () => killedByUs };
}
