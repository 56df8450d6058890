import { formatError, toPgbkError, type ErrorCode, type PgbkError } from '../errors.js';
import type { ExitPolicy } from './commands.js';
import { diag } from './diag.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';

/**
 * PostgreSQL's restore_command contract (PostgreSQL 15, RestoreArchivedFile): 1 means "not in the
 * archive" (end of archived WAL, or try another timeline), so it is used for nothing else; any
 * status above 125 makes recovery stop with a FATAL error instead of ending early and promoting at
 * the wrong point.
 */
export const EXIT_NOT_FOUND = 1;
export const EXIT_FATAL = 255;

/** The one place where an error becomes a line on stderr and an exit status. */
export function reportError(err: unknown, io: CliIo, debug: boolean, policy: ExitPolicy = 'standard', command = ''): number {
  const e = toPgbkError(err);
  const code = exitCodeFor(e.code, policy);
  if (policy === 'restore-command') {
    // Routine: PostgreSQL probes for files that do not exist (newer timelines, the end of WAL).
    if (code === EXIT_NOT_FOUND) {
      if (debug) write(io, 'info', `pgbk ${command}: ${formatError(e)}`, e);
      return code;
    }
    write(io, 'error', `pgbk ${command}: FATAL: ${formatError(e)}\n  recovery must stop here rather than end early (exit ${EXIT_FATAL})`, e);
  } else {
    write(io, 'error', `pgbk: ${formatError(e)}`, e);
  }
  if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  return code;
}

function write(io: CliIo, level: 'info' | 'error', text: string, e: PgbkError): void {
  if (io.logFormat === 'json') {
    diag(io, level, e.message, {
      code: e.code,
      ...(e.server === undefined ? {} : { server: e.server }),
      ...(e.path === undefined ? {} : { path: e.path }),
      ...(e.hint === undefined ? {} : { hint: e.hint }),
    });
  } else {
    diag(io, level, text);
  }
}

/** Exit statuses (README "Exit codes"): one table for every command. */
export function exitCodeFor(code: ErrorCode, policy: ExitPolicy = 'standard'): number {
  if (policy === 'restore-command') return code === 'NOT_FOUND' ? EXIT_NOT_FOUND : EXIT_FATAL;
  switch (code) {
    case 'USAGE':
    case 'CONFIG':
    case 'IDENTITY':
    case 'HOSTKEY':
    case 'LOCK':
    case 'NETWORK':
    case 'PG':
    case 'WAL':
    case 'CATALOG':
    case 'STALE_PLAN':
    case 'NOT_FOUND':
    case 'INTERNAL':
      return EXIT.failure;
    default: {
      const never: never = code;
      return never;
    }
  }
}
