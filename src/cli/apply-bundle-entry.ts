/**
 * `apply` and `backup`'s entry (session 19), as restore-bundle-entry.ts is restore's: bundled by
 * the build into dist/src/cli/apply-bundle.cjs (scripts/bundle-read.mjs), which cli.ts loads for
 * these commands with a V8 code cache instead of their ES modules. A backup's start (Node, modules,
 * configuration) is fixed CPU that pg_basebackup alone does not pay. The processes and threads a
 * backup starts load their own modules from dist/src, as before.
 */
import { bundleEntry, type CommandLoaders } from './dispatch.js';

export const APPLY_LOADERS: CommandLoaders = {
  apply: () => import('./apply.js'),
  backup: () => import('./backup.js'),
};

export const { runBundled, isBundledCommand } = bundleEntry(APPLY_LOADERS);
