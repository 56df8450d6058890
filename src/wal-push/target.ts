/**
 * wal-push through a worker: the shared option set of the tiny client (`pgbk wal-push --to ssh://…`
 * or, for the local catalog, `--worker`), its worker (`pgbk wal-push-worker`) and the unix socket
 * they meet at. Kept free of heavy imports: the client runs once per WAL segment.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';

/**
 * A worker's key from its identity (not a content checksum), with node:crypto loaded on first use:
 * cli/commands.ts imports this module for PUSH_FLAGS, so every command (the per-segment wal-fetch
 * too) would otherwise load node:crypto and node:os at start.
 */
function keyOf(parts: readonly string[]): string {
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

export interface PushTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  /** Catalog root on the backup host. */
  readonly catalog: string;
}

export interface PushOptions {
  readonly target: PushTarget;
  /** The --to text as given (part of the worker's identity). */
  readonly to: string;
  readonly server: string;
  readonly identityFile?: string;
  readonly knownHosts?: string;
  /** Command that runs pgbk on the backup host, split on spaces (default "pgbk"). */
  readonly remotePgbk: string;
  readonly compression: 'zstd' | 'gzip' | 'none';
}

/** ssh://user@host[:port]/absolute/catalog/path */
export function parseTarget(to: string): PushTarget {
  const m = /^ssh:\/\/([^@/\s]+)@(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?(\/.*)$/.exec(to);
  if (m === null || m[1] === undefined || m[2] === undefined || m[4] === undefined) {
    throw new PgbkError('USAGE', `wal-push --to ${to}: expected ssh://USER@HOST[:PORT]/PATH/TO/CATALOG`);
  }
  const port = m[3] === undefined ? 22 : Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PgbkError('USAGE', `wal-push --to ${to}: bad port`);
  return { user: decodeURIComponent(m[1]), host: m[2].replace(/^\[|\]$/g, ''), port, catalog: decodeURIComponent(m[4]) };
}

export function parseCompression(v: string | undefined): PushOptions['compression'] {
  if (v === undefined) return 'zstd';
  if (v === 'zstd' || v === 'gzip' || v === 'none') return v;
  throw new PgbkError('USAGE', `--compression ${v}: expected zstd, gzip or none`);
}

/** Private per-user directory for sockets and worker logs. */
export function runtimeDir(): string {
  return path.join(process.getBuiltinModule('node:os').tmpdir(), `pgbk-${process.getuid?.() ?? 'u'}`);
}

/** One worker per (target, server, credentials, pgdata): its socket name is a hash of them. */
export function workerKey(opts: PushOptions, pgdata: string): string {
  return keyOf([opts.to, opts.server, opts.identityFile ?? '', opts.knownHosts ?? '', opts.remotePgbk, opts.compression, pgdata]);
}

/**
 * The worker of local archiving: one per (configuration file, server, pgdata). The client knows
 * the configuration only by its path (it never loads it: the config loader is heavy), so the
 * path is part of the key — --print-archive-command writes it absolute.
 */
export function localWorkerKey(config: string, server: string, pgdata: string): string {
  return keyOf(['local', config, server, pgdata]);
}

/** How a client reaches its worker: which worker (by data directory) and how to start one. */
export interface WorkerRoute {
  readonly server: string;
  /** The flags that name the sink, before SERVER, for `pgbk wal-push-worker`. */
  readonly workerArgs: readonly string[];
  /** The worker's key for a data directory. */
  key(pgdata: string): string;
}

/** The route to the SSH worker for these options. */
export function sshRoute(opts: PushOptions): WorkerRoute {
  return { server: opts.server, workerArgs: optionArgs(opts), key: (pgdata) => workerKey(opts, pgdata) };
}

/** The route to the local worker for this (absolute) configuration file. */
export function localRoute(config: string, server: string): WorkerRoute {
  return { server, workerArgs: ['--config', config], key: (pgdata) => localWorkerKey(config, server, pgdata) };
}

export function socketPath(key: string): string {
  return path.join(runtimeDir(), `walpush-${key}.sock`);
}

/** Flags to hand the same options to the worker process. */
export function optionArgs(opts: PushOptions): string[] {
  return [
    '--to',
    opts.to,
    ...(opts.identityFile === undefined ? [] : ['--identity', opts.identityFile]),
    ...(opts.knownHosts === undefined ? [] : ['--known-hosts', opts.knownHosts]),
    '--remote-pgbk',
    opts.remotePgbk,
    '--compression',
    opts.compression,
  ];
}

/**
 * The client's and worker's shared flags with their help (cli/commands.ts puts them into the
 * wal-push and wal-push-worker definitions, typed there as option definitions).
 */
export const PUSH_FLAGS = {
  to: { type: 'string', value: 'ssh://USER@HOST[:PORT]/CATALOG', help: 'archive to a catalog on another host over SSH, through a long-lived worker' },
  identity: { type: 'string', value: 'FILE', help: 'with --to: SSH private key file' },
  'known-hosts': { type: 'string', value: 'FILE', help: "with --to: known_hosts file the backup host's key is checked against" },
  'remote-pgbk': { type: 'string', value: 'CMD', help: 'with --to: how to run pgbk on the backup host (default: pgbk)' },
  compression: { type: 'string', value: 'zstd|gzip|none', help: 'with --to: compression of the archived WAL (default: zstd)' },
} as const;

export function optionsFrom(values: Record<string, unknown>, server: string): PushOptions {
  const to = values['to'];
  if (typeof to !== 'string') throw new PgbkError('USAGE', 'wal-push: --to ssh://USER@HOST[:PORT]/CATALOG is required');
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const identityFile = str('identity');
  const knownHosts = str('known-hosts');
  return {
    target: parseTarget(to),
    to,
    server,
    ...(identityFile === undefined ? {} : { identityFile: path.resolve(identityFile) }),
    ...(knownHosts === undefined ? {} : { knownHosts: path.resolve(knownHosts) }),
    remotePgbk: str('remote-pgbk') ?? 'pgbk',
    compression: parseCompression(str('compression')),
  };
}
