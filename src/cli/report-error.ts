import { formatError, toPgbkError, type ErrorCode } from '../errors.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';

/** The one place where an error becomes a line on stderr and an exit status. */
export function reportError(err: unknown, io: CliIo, debug: boolean): number {
  const e = toPgbkError(err);
  io.stderr.write(`pgbk: ${formatError(e)}\n`);
  if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  return exitCodeFor(e.code);
}

export function exitCodeFor(code: ErrorCode): number {
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
