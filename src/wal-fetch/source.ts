/**
 * wal-fetch over SSH: the option set shared by the per-segment client (`pgbk wal-fetch --from
 * ssh://…`, PostgreSQL's restore_command on the database host), its long-lived worker
 * (`pgbk wal-fetch-worker`) and `pgbk restore --remote`, which writes the command line. Also the
 * unix socket and log file the client and worker meet at. Kept free of heavy imports: the client
 * runs once per WAL segment the spool did not have.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { parseTarget, runtimeDir, type PushTarget } from '../wal-push/target.js';

/** Where the archive is: the same ssh://USER@HOST[:PORT]/CATALOG form wal-push --to uses. */
export type FetchSource = PushTarget;

export interface FetchOptions {
  readonly source: FetchSource;
  /** The --from text as given (part of the worker's identity). */
  readonly from: string;
  readonly server: string;
  readonly identityFile?: string;
  readonly knownHosts?: string;
  /** Command that runs pgbk on the backup host, split on spaces (default "pgbk"). */
  readonly remotePgbk: string;
  /** Segments kept spooled ahead of PostgreSQL. */
  readonly prefetch: number;
}

export const DEFAULT_PREFETCH = 8;

/**
 * The client's and worker's shared flags with their help (cli/commands.ts puts them into the
 * wal-fetch and wal-fetch-worker definitions, typed there as option definitions).
 */
export const FETCH_FLAGS = {
  from: {
    type: 'string',
    value: 'ssh://USER@HOST[:PORT]/CATALOG',
    help: 'fetch from a catalog on another host over SSH, through a long-lived prefetching worker',
  },
  identity: { type: 'string', value: 'FILE', help: 'with --from: SSH private key file' },
  'known-hosts': { type: 'string', value: 'FILE', help: "with --from: known_hosts file the backup host's key is checked against" },
  'remote-pgbk': { type: 'string', value: 'CMD', help: 'with --from: how to run pgbk on the backup host (default: pgbk)' },
  prefetch: { type: 'string', value: 'N', help: 'segments to keep spooled ahead of PostgreSQL (0-999, default 8)' },
} as const;

/** ssh://USER@HOST[:PORT]/ABSOLUTE/CATALOG, with a message that names wal-fetch's flag. */
export function parseSource(from: string, flag = 'wal-fetch --from'): FetchSource {
  try {
    return parseTarget(from);
  } catch {
    throw new PgbkError('USAGE', `${flag} ${from}: expected ssh://USER@HOST[:PORT]/PATH/TO/CATALOG`);
  }
}

export function parsePrefetch(v: string | undefined): number {
  if (v === undefined) return DEFAULT_PREFETCH;
  if (!/^\d{1,3}$/.test(v)) throw new PgbkError('USAGE', `wal-fetch: --prefetch ${v}: expected a number 0-999`);
  return Number(v);
}

export function fetchOptionsFrom(values: Readonly<Record<string, unknown>>, server: string, cwd: string): FetchOptions {
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const from = str('from');
  if (from === undefined) throw new PgbkError('USAGE', 'wal-fetch: --from ssh://USER@HOST[:PORT]/CATALOG is required');
  const identityFile = str('identity');
  const knownHosts = str('known-hosts');
  return {
    source: parseSource(from),
    from,
    server,
    ...(identityFile === undefined ? {} : { identityFile: path.resolve(cwd, identityFile) }),
    ...(knownHosts === undefined ? {} : { knownHosts: path.resolve(cwd, knownHosts) }),
    remotePgbk: str('remote-pgbk') ?? 'pgbk',
    prefetch: parsePrefetch(str('prefetch')),
  };
}

/** The flags that hand the same options on (to the worker, or into restore_command). */
export function fetchOptionArgs(opts: FetchOptions): string[] {
  return [
    '--from',
    opts.from,
    ...(opts.identityFile === undefined ? [] : ['--identity', opts.identityFile]),
    ...(opts.knownHosts === undefined ? [] : ['--known-hosts', opts.knownHosts]),
    ...(opts.remotePgbk === 'pgbk' ? [] : ['--remote-pgbk', opts.remotePgbk]),
    ...(opts.prefetch === DEFAULT_PREFETCH ? [] : ['--prefetch', String(opts.prefetch)]),
  ];
}

/** One worker per (source, server, credentials, data directory): its socket name is a hash of them. */
export function fetchWorkerKey(opts: FetchOptions, pgdata: string): string {
  // node:crypto on first use: cli/commands.ts imports this module (FETCH_FLAGS) for every command.
  return process
    .getBuiltinModule('node:crypto')
    .createHash('sha256')
    .update(JSON.stringify(['fetch', opts.from, opts.server, opts.identityFile ?? '', opts.knownHosts ?? '', opts.remotePgbk, pgdata]))
    .digest('hex')
    .slice(0, 16);
}

export function fetchSocketPath(key: string): string {
  return path.join(runtimeDir(), `walfetch-${key}.sock`);
}

export function fetchLogPath(key: string): string {
  return path.join(runtimeDir(), `walfetch-${key}.log`);
}

/** Client → worker: one request per connection. */
export interface FetchRequest {
  readonly name: string;
  /** Absolute path PostgreSQL asked for (%p resolved against its data directory). */
  readonly dest: string;
}

/**
 * Worker → client. `absent`: the archive answered that the file is not there (exit 1, PostgreSQL's
 * "end of archived WAL"); `fatal`: anything else — cannot tell, corrupt, refused (exit 255).
 */
export type FetchReply = { readonly status: 'ok' } | { readonly status: 'absent' } | { readonly status: 'fatal'; readonly error: string };
