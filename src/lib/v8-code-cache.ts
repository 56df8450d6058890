/**
 * Load a CommonJS file as Node would, but compiled with a V8 code cache kept in the user's cache
 * directory (lib/user-cache.ts). Node 20 has no compile cache of its own (module.enableCompileCache
 * came in 22.1), and compiling a big bundle is a visible part of a command's start: the AWS SDK's
 * client-s3, bundled into one file (scripts/bundle-sdk.mjs), takes 60–80 ms to require from
 * node_modules and 35–50 ms from its cache.
 *
 * The cache is only a shortcut: an entry is used only under the key it was written with (the file
 * by path and identity, so a rebuild or an upgrade is a new file, and the Node.js version), V8
 * checks its own version, flags and the source's length and falls back to compiling when anything
 * differs, and every failure (no home, read-only, another user's file, PGBK_NO_CACHE=1) is "no
 * cache". The entry carries the sha256 of its V8 data, checked before V8 sees it: V8 does not check
 * the data itself, and aborts the process (SIGTRAP) on a damaged one. An entry is written once,
 * after the file's code ran (so it holds the functions the command compiled), by the user that owns
 * the cache directory; one V8 rejected is not rewritten (a run with other V8 flags would otherwise
 * rewrite it at every start).
 *
 * The file must hold no import() (bundle with esbuild's `supported: { 'dynamic-import': false }`):
 * a vm.Script's import() needs a callback, which Node 20 loses when the script comes from a cache.
 */

import { createHash } from 'node:crypto';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { readCacheBytes, userCacheDir, writeCacheBytes } from './user-cache.js';

const CACHE_FORMAT = 1;

export type CacheUse = 'used' | 'absent' | 'rejected' | 'off';

export interface CachedModule<T> {
  readonly exports: T;
  /** How the code cache served this load. */
  readonly cache: CacheUse;
  /** Write the code cache when there was none (call after the code ran); whether it was written. */
  readonly save: () => boolean;
}

function keyOf(file: string, st: Stats): string {
  return JSON.stringify([CACHE_FORMAT, file, st.dev, st.ino, st.size, st.mtimeMs, process.version, process.arch]);
}

/** One cache file per file path (FNV-1a of the path: a name only; the key inside decides). */
export function cacheName(prefix: string, file: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < file.length; i++) h = Math.imul(h ^ file.charCodeAt(i), 0x01000193) >>> 0;
  return `${prefix}-${h.toString(16).padStart(8, '0')}.v8cache`;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An entry: the key, the sha256 of the V8 data, each on a line of its own, then the data. */
export function entryOf(key: string, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${key}\n${sha256(data)}\n`), data]);
}

/** The entry's V8 data when it was written under `key` and is whole. */
export function cachedDataOf(entry: Buffer | undefined, key: string): Buffer | undefined {
  if (entry === undefined) return undefined;
  const nl = entry.indexOf(0x0a);
  if (nl <= 0 || entry.subarray(0, nl).toString('utf8') !== key) return undefined;
  const nl2 = entry.indexOf(0x0a, nl + 1);
  if (nl2 < 0) return undefined;
  const data = entry.subarray(nl2 + 1);
  return data.length > 0 && sha256(data) === entry.subarray(nl + 1, nl2).toString('utf8') ? data : undefined;
}

/** The file's exports (cache files named `prefix-…`), or undefined when the file does not exist. */
export function loadCommonJsCached<T>(file: string, env: NodeJS.ProcessEnv, prefix: string): CachedModule<T> | undefined {
  let st: Stats;
  let source: string;
  try {
    st = statSync(file);
    source = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const off = env['PGBK_NO_CACHE'] === '1';
  const dir = off ? undefined : userCacheDir(env);
  const name = cacheName(prefix, file);
  const key = keyOf(file, st);
  const cachedData = cachedDataOf(dir === undefined ? undefined : readCacheBytes(dir, name), key);
  // CommonJS's own wrapper: compiled here only to pass the cache.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  const module = { exports: {} };
  (script.runInThisContext() as (...a: unknown[]) => void).call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
  const cache: CacheUse = dir === undefined ? 'off' : cachedData === undefined ? 'absent' : script.cachedDataRejected === true ? 'rejected' : 'used';
  let saved = false;
  return {
    exports: module.exports as T,
    cache,
    save: () => {
      if (cache !== 'absent' || saved) return false;
      saved = true;
      // Asked again: a command that switched to the catalog's owner must not write into root's home.
      const now = userCacheDir(env);
      return now !== undefined && writeCacheBytes(now, name, entryOf(key, script.createCachedData()));
    },
  };
}
