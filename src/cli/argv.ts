/**
 * Where the command is in pgbk's arguments. Global options may come before it (pgbk -c FILE plan):
 * they are moved behind it so every command parses them the same way. Used by dispatch.ts and by
 * cli.ts, which must know the command before it loads anything else (read-entry.ts); kept apart so
 * both see the same command.
 */

export interface SplitArgv {
  /** The command name, or undefined when there is none. */
  readonly command: string | undefined;
  /** The command's own arguments, then the global options that came before the command. */
  readonly rest: readonly string[];
  /** The global options (and their values) that came before the command. */
  readonly globals: readonly string[];
}

export function splitArgv(argv: readonly string[]): SplitArgv {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config' || a === '--log-format') {
      globals.push(a, argv[i + 1] ?? '');
      i += 2;
    } else if (a.startsWith('--config=') || a.startsWith('--log-format=') || a === '--debug' || a === '--json') {
      globals.push(a);
      i += 1;
    } else break;
  }
  return { command: argv[i], rest: [...argv.slice(i + 1), ...globals], globals };
}

/**
 * The commands cli.ts runs from the bundle of the read path (cli/read-entry.ts, which has a handler
 * for each of them): read-only, run often, by people and by monitoring.
 */
export const BUNDLED_COMMANDS: ReadonlySet<string> = new Set(['list', 'status']);
