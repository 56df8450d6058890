/**
 * `restore`'s entry (session 19): dispatched as every command is (dispatch.ts), with only its
 * handler. The build bundles this module and every pgbk module it can reach into one CommonJS file,
 * dist/src/cli/restore-bundle.cjs (scripts/bundle-read.mjs, as read-entry.ts for list and status),
 * which cli.ts loads for `restore` with a V8 code cache instead of its ~95 ES modules: Node 20
 * spends ~0.5 ms per ES module, and a restore's start is fixed CPU on a machine whose cores the
 * unpack keeps busy. The bundle holds every pgbk module the command can reach in this process, so
 * none is loaded twice; its worker threads and the processes it starts (wal-fetch as
 * restore_command, the ssh agent) load their own modules from dist/src, as before.
 */
import { bundleEntry, type CommandLoaders } from './dispatch.js';

export const RESTORE_LOADERS: CommandLoaders = {
  restore: () => import('./restore.js'),
};

export const { runBundled, isBundledCommand } = bundleEntry(RESTORE_LOADERS);
