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
import { bundleEntry, type CommandLoaders } from './dispatch.js';

export const READ_LOADERS: CommandLoaders = {
  list: () => import('./list.js'),
  status: () => import('./status.js'),
};

export const { runBundled, isBundledCommand } = bundleEntry(READ_LOADERS);
