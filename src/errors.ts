/**
 * One error type for everything pgbk reports to a user. It carries what a DBA needs to act: a code
 * (which also decides the exit status and whether a retry can help), the server, the file or path
 * involved, and a hint. The CLI turns it into one line; stack traces only with --debug.
 */

export type ErrorCode =
  | 'CONFIG' // configuration file missing, unparsable or invalid: terminal
  | 'USAGE' // bad command-line arguments: terminal
  | 'IDENTITY' // WAL or server from another cluster: terminal
  | 'HOSTKEY' // unknown, changed or revoked SSH host key: terminal
  | 'LOCK' // another pgbk holds the server lock past --lock-timeout: retryable
  | 'NETWORK' // connection refused/reset/timeout: retryable
  | 'PG' // PostgreSQL or one of its tools reported an error
  | 'WAL' // a WAL file failed validation
  | 'CATALOG' // the on-disk catalog is unreadable or inconsistent
  | 'STALE_PLAN' // a saved plan no longer matches the observed state
  | 'NOT_FOUND' // a backup, server or WAL file that does not exist
  | 'INTERNAL';

/** Where an error happened; callers often have a value that may be undefined, which means "not known". */
export interface ErrorContext {
  readonly server?: string | undefined;
  readonly path?: string | undefined;
  readonly hint?: string | undefined;
  readonly cause?: unknown;
}

export class PgbkError extends Error {
  readonly code: ErrorCode;
  readonly server: string | undefined;
  readonly path: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'PgbkError';
    this.code = code;
    this.server = context.server;
    this.path = context.path;
    this.hint = context.hint;
  }
}

/** Codes for which trying again later may succeed (DESIGN.md §1: network and lock contention). */
export function isRetryable(code: ErrorCode): boolean {
  return code === 'LOCK' || code === 'NETWORK';
}

/** Normalise anything thrown into a PgbkError without losing the original message. */
export function toPgbkError(err: unknown, context: ErrorContext = {}): PgbkError {
  if (err instanceof PgbkError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PgbkError('INTERNAL', message, { ...context, cause: err });
}

/** One human line: "server main: message (path) — hint". */
export function formatError(err: PgbkError): string {
  const parts: string[] = [];
  if (err.server !== undefined) parts.push(`server ${err.server}: `);
  parts.push(err.message);
  if (err.path !== undefined && !err.message.includes(err.path)) parts.push(` (${err.path})`);
  if (err.hint !== undefined) parts.push(`\n  hint: ${err.hint}`);
  return parts.join('');
}
