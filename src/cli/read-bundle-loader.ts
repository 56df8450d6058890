/**
 * Loads a command bundle — dist/src/cli/read-bundle.cjs (read-entry.ts), restore-bundle.cjs
 * (restore-bundle-entry.ts) or apply-bundle.cjs (apply-bundle-entry.ts); cli.ts's BUNDLES names
 * them — as Node loads a CommonJS file, but compiled
 * with a V8 code cache kept in the user's cache directory (lib/v8-code-cache.ts says what is
 * checked before the cache is used): compiling the bundle is ~5 ms of every `list` or `status`, the
 * largest part of their start after Node's own (issue 13 item 5; Node 20 has no compile cache of
 * its own). The cache entry is written after the command ran, so it holds what the command compiled.
 */
import { fileURLToPath } from 'node:url';
import { type CacheUse, loadCommonJsCached } from '../lib/v8-code-cache.js';
import type { BundleEntry } from './dispatch.js';

export interface LoadedBundle {
  /** What the bundle's entry exports (dispatch.ts bundleEntry). */
  readonly bundle: BundleEntry;
  /** How the code cache served this load. */
  readonly cache: CacheUse;
  /** Write the code cache when there was none (after the command ran); whether it was written. */
  readonly save: () => boolean;
}

export const READ_BUNDLE = fileURLToPath(new URL('./read-bundle.cjs', import.meta.url));
/** `restore`'s bundle (restore-bundle-entry.ts), loaded the same way. */
export const RESTORE_BUNDLE = fileURLToPath(new URL('./restore-bundle.cjs', import.meta.url));

/**
 * The bundle's exports, or undefined when there is no bundle (run from the TypeScript sources).
 * The bundle has no import() (scripts/bundle-read.mjs turns them into require()), as
 * lib/v8-code-cache.ts requires.
 */
export function loadReadBundle(env: NodeJS.ProcessEnv, file: string = READ_BUNDLE, prefix = 'read-bundle'): LoadedBundle | undefined {
  const loaded = loadCommonJsCached<BundleEntry>(file, env, prefix);
  return loaded === undefined ? undefined : { bundle: loaded.exports, cache: loaded.cache, save: loaded.save };
}
