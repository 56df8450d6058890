/**
 * Shared command-line parsing: every command accepts the global options (--config/-c, --json,
 * --debug, --log-format, --help) and turns parse failures into a USAGE error that names the flag
 * and, for a typo, the flag that was probably meant. The option objects come from commands.ts,
 * the same ones the help screens print.
 */
import { parseArgs } from 'node:util';
import { PgbkError } from '../errors.js';
import { GLOBAL_OPTIONS, findCommand, type OptionDef } from './commands.js';
import { closest } from './suggest.js';

export { GLOBAL_OPTIONS };

export interface Parsed<V> {
  readonly values: V;
  readonly positionals: readonly string[];
}

/** Every long option a command knows, with dashes: for "did you mean". */
export function knownFlags(command: string): string[] {
  const def = findCommand(command);
  const names = [...Object.keys(GLOBAL_OPTIONS), ...Object.keys(def?.options ?? {})];
  return [...new Set(names)].map((n) => `--${n}`);
}

function usageError(command: string, err: unknown): PgbkError {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const hint = `see pgbk ${command} --help`;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /Unknown option '([^']+)'/.exec(message)?.[1] ?? '';
    const guess = flag.startsWith('--') ? closest(flag.split('=')[0]!, knownFlags(command)) : undefined;
    return new PgbkError('USAGE', `${command}: unknown option ${flag}${guess === undefined ? '' : ` (did you mean ${guess}?)`}`, { hint });
  }
  return new PgbkError('USAGE', `${command}: ${message}`, { hint });
}

/** Option objects as the parser takes them: the definitions of commands.ts (help is for the help screens). */
export type ParserOptions = Readonly<Record<string, Omit<OptionDef, 'help'> & { readonly help?: string }>>;

export function parseCommand<O extends ParserOptions>(command: string, args: readonly string[], options: O) {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usageError(command, err);
  }
  const def = findCommand(command);
  const common = parsed.values as { json?: boolean; 'log-format'?: string };
  if (common.json === true && def !== undefined && !def.json) {
    throw new PgbkError('USAGE', `${command}: has no JSON output; --json is not accepted`, { hint: 'commands with --json: see README "JSON output"' });
  }
  const format = common['log-format'];
  if (format !== undefined && format !== 'text' && format !== 'json') {
    throw new PgbkError('USAGE', `${command}: --log-format must be text or json, got ${format}`);
  }
  return parsed;
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
