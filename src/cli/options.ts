/**
 * Shared command-line parsing: every command accepts --config/-c, --json and --debug, and turns
 * parse failures into a USAGE error that names the flag.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PgbkError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export const GLOBAL_OPTIONS = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean', default: false },
  debug: { type: 'boolean', default: false },
} as const satisfies Options;

export interface Parsed<V> {
  readonly values: V;
  readonly positionals: readonly string[];
}

export function parseCommand<O extends Options>(command: string, args: readonly string[], options: O) {
  try {
    return parseArgs({
      args: [...args],
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new PgbkError('USAGE', `${command}: ${err instanceof Error ? err.message : String(err)}`, {
      hint: `see pgbk --help`,
    });
  }
}

/** Parse an ISO-8601 time given on the command line (--now, --target-time). */
export function parseTimeFlag(flag: string, value: string): Date {
  // A bare date-time without a zone would be read in the machine's zone: refuse it (a backup
  // decision must not depend on where pgbk runs).
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(value) && /T|\s\d/.test(value)) {
    throw new PgbkError('USAGE', `${flag} ${value}: add a time zone (Z or +HH:MM)`);
  }
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new PgbkError('USAGE', `${flag} ${value}: not an ISO-8601 time`);
  return d;
}

export function requirePositional(command: string, positionals: readonly string[], index: number, name: string): string {
  const v = positionals[index];
  if (v === undefined || v === '') throw new PgbkError('USAGE', `${command}: missing ${name}`);
  return v;
}
