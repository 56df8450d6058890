/**
 * Command dispatch. Every command is defined in commands.ts (options, help, handler loader); its
 * handler module is imported on demand, so `pgbk wal-push` / `pgbk wal-fetch` (run by PostgreSQL
 * once per WAL segment) do not pay for loading the planner, ajv or ssh2. Errors from any command
 * end here, in the one catch that turns them into a stderr line and an exit status
 * (report-error.ts).
 */
import { findCommand } from './commands.js';
import { COMMAND_LOADERS } from './command-loaders.js';
import { PgbkError } from '../errors.js';
import type { CliIo, CommandMain } from './io.js';
import { EXIT } from './io.js';
import { reportError } from './report-error.js';
import { withCatalogUse } from './run-as-owner.js';

/**
 * Where the command is in pgbk's arguments. Global options may come before it (pgbk -c FILE plan):
 * they are moved behind it so every command parses them the same way.
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

/** The value of --log-format wherever it is (before a `--`), or undefined. */
function logFormatOf(args: readonly string[]): 'text' | 'json' | undefined {
  let v: string | undefined;
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    const a = args[i]!;
    if (a === '--log-format') v = args[i + 1];
    else if (a.startsWith('--log-format=')) v = a.slice('--log-format='.length);
  }
  return v === 'json' ? 'json' : v === 'text' ? 'text' : undefined;
}

function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * What a command bundle's entry exports (cli/read-bundle-loader.ts loads them): run one of `loaders`'
 * commands, and whether `argv` names one of them, as the dispatcher reads it.
 */
export interface BundleEntry {
  readonly runBundled: (argv: readonly string[], io: CliIo) => Promise<number>;
  readonly isBundledCommand: (argv: readonly string[]) => boolean;
}

export function bundleEntry(loaders: CommandLoaders): BundleEntry {
  return {
    runBundled: (argv, io) => dispatch(argv, io, loaders),
    isBundledCommand: (argv) => {
      const { command } = splitArgv(argv);
      return command !== undefined && Object.hasOwn(loaders, command);
    },
  };
}

/** The command's handler module, loaded on demand: command-loaders.ts, or a subset (read-entry.ts). */
export type CommandLoaders = Readonly<Record<string, () => Promise<{ main: CommandMain }>>>;

export function run(argv: readonly string[], io: CliIo): Promise<number> {
  return dispatch(argv, io, COMMAND_LOADERS);
}

export async function dispatch(argv: readonly string[], io: CliIo, loaders: CommandLoaders): Promise<number> {
  const { command, rest, globals } = splitArgv(argv);
  const baseIo: CliIo = { ...io, logFormat: logFormatOf([...globals, ...rest]) };
  const debug = rest.includes('--debug');
  if (command === undefined || command === '--help' || command === '-h') {
    const { renderUsage } = await import('./help.js');
    (command === undefined ? io.stderr : io.stdout).write(renderUsage());
    return command === undefined ? EXIT.failure : EXIT.ok;
  }
  if (command === '--version' || command === 'version') {
    const { pgbkVersion } = await import('./version.js');
    io.stdout.write(`pgbk ${pgbkVersion()}\n`);
    return EXIT.ok;
  }
  const def = findCommand(command);
  if (def === undefined) {
    const { unknownCommand } = await import('./help.js');
    return reportError(unknownCommand(command), baseIo, debug);
  }
  const cmdIo: CliIo = { ...baseIo, ...(def.timestamps === true ? { timestamps: true } : {}) };
  try {
    if (wantsHelp(rest)) {
      const { renderCommandHelp } = await import('./help.js');
      io.stdout.write(renderCommandHelp(def));
      return EXIT.ok;
    }
    if (command === 'wal-push' && rest.some((a) => a === '--to' || a.startsWith('--to=') || a === '--worker')) {
      // Push through the long-lived worker (to a catalog on another host over SSH, or --worker for
      // this one): the tiny client (wal-push-client.ts), which never loads the configuration.
      return await (await import('./wal-push-client.js')).main(rest, cmdIo);
    }
    const load = loaders[def.name];
    if (load === undefined) throw new PgbkError('INTERNAL', `${def.name}: no handler registered (cli/command-loaders.ts)`);
    const mod = await load();
    return await mod.main(rest, withCatalogUse(command, cmdIo));
  } catch (err) {
    return reportError(err, cmdIo, debug, def.exitPolicy, def.name);
  }
}
