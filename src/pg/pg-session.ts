/**
 * One short-lived `pg` connection for probes and control functions (pg_switch_wal, backup start/
 * stop), with errors turned into PgbkError: NETWORK when trying again later can help (refused,
 * unreachable, timed out, server starting up), PG otherwise. Messages name the server by its
 * conninfo with the password redacted.
 */

import type pg from 'pg';
import { PgbkError } from '../errors.js';
import { type PgClientConfig, toClientConfig } from './client-config.js';
import { displayConninfo } from './conninfo.js';
import { pgDriver } from './pg-driver.js';

const NETWORK_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENOENT', // ENOENT: no socket file in the unix socket directory
]);

/** SQLSTATEs that mean "not now" rather than "wrong": retrying later can succeed. */
function isTransientSqlState(code: string): boolean {
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

interface ErrorShape {
  readonly message: string;
  readonly code?: unknown;
  readonly severity?: unknown;
}

function shapeOf(err: unknown): ErrorShape {
  if (err instanceof Error) return err as Error & ErrorShape;
  return { message: String(err) };
}

/** Classify anything the driver threw. `doing` says what we were doing ("connect", "query …"). */
export function toPgError(err: unknown, conninfo: string, doing: string): PgbkError {
  if (err instanceof PgbkError) return err;
  const e = shapeOf(err);
  const where = displayConninfo(conninfo);
  const code = typeof e.code === 'string' ? e.code : '';
  const isServerError = typeof e.severity === 'string' && /^[0-9A-Z]{5}$/.test(code);
  if (isServerError) {
    const kind = isTransientSqlState(code) ? 'NETWORK' : 'PG';
    return new PgbkError(kind, `${doing} failed on ${where}: ${e.message} (SQLSTATE ${code})`, { cause: err });
  }
  const networkish = NETWORK_ERRNOS.has(code) || /timeout|timed out|terminated unexpectedly|Connection terminated/i.test(e.message);
  if (networkish) {
    return new PgbkError('NETWORK', `${doing} failed on ${where}: ${e.message}`, {
      cause: err,
      hint: 'is PostgreSQL running and reachable at that host and port?',
    });
  }
  return new PgbkError('PG', `${doing} failed on ${where}: ${e.message}`, { cause: err });
}

export interface SessionOptions {
  /** 'database' opens a replication connection that also accepts SQL (IDENTIFY_SYSTEM, …). */
  readonly replication?: 'database';
}

/** Connect, run fn, always disconnect. Errors from connect and from fn come back as PgbkError. */
export async function withPgClient<T>(conninfo: string, fn: (client: pg.Client) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const config: PgClientConfig = { ...toClientConfig(conninfo), ...(options.replication ? { replication: options.replication } : {}) };
  // Loaded on first use: the driver (a dozen modules) is not needed by commands that only read
  // the catalog, and every command's start-up counts when run from cron or per WAL segment.
  const driver = pgDriver();
  const client = new driver.Client(config);
  // A connection dropped between queries is reported by the pending query; without a listener
  // the 'error' event would crash the process instead.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw toPgError(err, conninfo, 'connect');
  }
  try {
    return await fn(client);
  } catch (err) {
    throw toPgError(err, conninfo, 'query');
  } finally {
    await client.end().catch(() => undefined);
  }
}
