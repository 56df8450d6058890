/**
 * The read commands' entry (issue 13 item 5): `list` and `status`, dispatched as every command is
 * (dispatch.ts), with only their handlers. The build bundles this module and everything it can
 * load into one CommonJS file, dist/src/cli/read-bundle.cjs (scripts/bundle-read.mjs), which cli.ts
 * loads for these commands instead of the ES module graph: Node 20 spends ~0.5 ms per ES module on
 * resolving, reading, compiling and linking it, and `list` loads 57 of them, more than half of its
 * start over Node's own. The bundle holds every pgbk module these commands can reach, so no module
 * of theirs is ever loaded twice (once from the bundle, once from dist/): one PgbkError class, one
 * registry of catalogs. Other commands do not run it.
 */
import type { CliIo } from './io.js';
import { type CommandLoaders, dispatch, splitArgv } from './dispatch.js';

export const READ_LOADERS: CommandLoaders = {
  list: () => import('./list.js'),
  status: () => import('./status.js'),
};

export function runRead(argv: readonly string[], io: CliIo): Promise<number> {
  return dispatch(argv, io, READ_LOADERS);
}

/** Whether `argv` runs one of the commands this entry has a handler for. */
export function isReadCommand(argv: readonly string[]): boolean {
  const { command } = splitArgv(argv);
  return command !== undefined && Object.hasOwn(READ_LOADERS, command);
}

// The names every command bundle's entry exports (cli/read-bundle-loader.ts loads them all).
export { isReadCommand as isBundledCommand, runRead as runBundled };
