/**
 * The Transport port: how pgbk runs programs and moves files on a database host, the same way
 * whether that host is this machine (LocalTransport) or another one over SSH (SshTransport). Every
 * implementation passes the one contract suite in test/integration/transport/contract.ts.
 */

import type { Readable, Writable } from 'node:stream';

/** How a remote or local program ended. A missing status (connection lost) is `code: null`. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: string | null;
}

/** A running program: its three streams and a promise of how it ended. */
export interface ExecProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves once the program ended and its streams closed; never rejects. */
  readonly done: Promise<ExitStatus>;
  /** Ask the program to stop (signal over SSH, SIGTERM locally); closing the channel as a fallback. */
  kill(): void;
}

export interface RunResult extends ExitStatus {
  readonly stdout: Buffer;
  readonly stderr: string;
}

export type FileType = 'file' | 'dir' | 'symlink' | 'other';

export interface FileInfo {
  readonly type: FileType;
  readonly size: number;
  /** Modification time in milliseconds since the epoch (fractional part kept when the host has it). */
  readonly mtimeMs: number;
  /** Permission bits, e.g. 0o600. */
  readonly mode: number;
}

export interface DirEntry extends FileInfo {
  readonly name: string;
}

export interface Transport {
  /** For messages: "local" or "ssh postgres@127.0.0.1:2222". */
  readonly description: string;
  /** Start argv[0] with argv[1..] as separate arguments (quoted for the remote shell over SSH). */
  exec(argv: readonly string[], opts?: { readonly env?: Readonly<Record<string, string>> }): ExecProcess;
  /** exec, feed `input` (or nothing) to stdin, collect stdout/stderr. Never rejects on a non-zero exit. */
  run(argv: readonly string[], input?: Buffer | string): Promise<RunResult>;
  /** The file's bytes as a stream; it errors (PgbkError NOT_FOUND / NETWORK) when the file cannot be read. */
  readStream(file: string): Readable;
  /**
   * Replace `file` atomically with everything `source` yields: temp file beside it, fsync, rename,
   * fsync the directory. Resolves once durable.
   */
  writeFile(file: string, source: Readable | Buffer | string, mode?: number): Promise<void>;
  /** lstat; undefined when it does not exist. */
  stat(file: string): Promise<FileInfo | undefined>;
  /** Entries of a directory (not recursive), sorted by name, without stat-following symlinks. */
  list(dir: string): Promise<DirEntry[]>;
  /**
   * Where `file` really is on the host: the real path of its deepest existing ancestor (every
   * symbolic link resolved) joined with the components that do not exist yet. Rejects with a USAGE
   * PgbkError when a symbolic link on the way points nowhere (mkdir -p would follow it unchecked).
   */
  realPath(file: string): Promise<string>;
  /** mkdir -p; the last directory gets `mode` (also when it existed already). */
  mkdir(dir: string, mode: number): Promise<void>;
  /** rm -rf of each path; absent paths are fine. */
  remove(paths: readonly string[]): Promise<void>;
  /** Make `link` a symbolic link to `target`, replacing whatever `link` was. */
  symlink(target: string, link: string): Promise<void>;
  /** Give `paths` the owner and group of `reference` (recursive: into directories too, links not followed). */
  chownLike(reference: string, paths: readonly string[], recursive?: boolean): Promise<void>;
  /** The user id programs run as on the host (0: root). */
  userId(): Promise<number>;
  close(): Promise<void>;
}
