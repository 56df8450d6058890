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

import type { Readable } from 'node:stream';
import { PgbkError } from '../errors.js';
import { type BaseBackupArgOptions, baseBackupArgs, meaningfulStderr, spawnBaseBackup } from './basebackup.js';
import { findPgBinary } from './pg-bin.js';

export interface StreamBaseBackupOptions extends BaseBackupArgOptions {
  readonly pgVersion: number;
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

/** pg_basebackup's arguments for a tar archive on stdout; no secret on the command line. */
export function streamBaseBackupCommand(opts: StreamBaseBackupOptions): { readonly args: string[]; readonly env: NodeJS.ProcessEnv } {
  return baseBackupArgs(opts, '-', 'fetch');
}

export function streamBaseBackup(opts: StreamBaseBackupOptions): StreamedBaseBackup {
  if (opts.signal?.aborted === true) throw new PgbkError('PG', 'pg_basebackup cancelled before it started');
  const binary = findPgBinary('pg_basebackup', opts.pgVersion);
  const { args, env } = streamBaseBackupCommand(opts);
  const child = spawnBaseBackup(binary, args, env, { stdout: true, onLine: opts.onLine, signal: opts.signal });
  let killedByUs = false;
  const done = child.outcome.then(({ code, signal, stderr }) => {
    if (opts.signal?.aborted === true) throw new PgbkError('PG', 'pg_basebackup was cancelled');
    if (code !== 0) {
      throw new PgbkError('PG', `pg_basebackup failed (${signal !== null ? `killed by ${signal}` : `exit ${String(code)}`}): ${meaningfulStderr(stderr)}`);
    }
  });
  // The caller awaits it after the upload; a rejection before that must not be "unhandled".
  done.catch(() => undefined);
  const stdout = child.stdout;
  if (stdout === null) throw new PgbkError('INTERNAL', 'pg_basebackup started without a stdout pipe');
  return {
    stdout,
    done,
    kill: () => {
      if (child.kill()) killedByUs = true;
    },
    killed: () => killedByUs,
  };
}
