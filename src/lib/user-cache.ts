/**
 * Small per-user cache files ($XDG_CACHE_HOME/pgbk or ~/.cache/pgbk): only ever a shortcut that
 * the caller re-validates, so any failure (no home, read-only, another user's file) means "no
 * cache", never an error. A file is trusted only if this user owns it and nobody else may write
 * it; writes are temp file + rename (no fsync: losing it costs one slow run, tearing it nothing).
 */

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The cache directory for this process's user, or undefined when there is no home of its own to
 * put it in: $XDG_CACHE_HOME or $HOME must exist and belong to this user (root run with another
 * user's HOME must not leave root's files there).
 */
export function userCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const xdg = env['XDG_CACHE_HOME'];
  const home = env['HOME'];
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : home !== undefined && path.isAbsolute(home) ? home : undefined;
  if (base === undefined) return undefined;
  try {
    const st = statSync(base);
    const uid = process.getuid?.();
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) return undefined;
  } catch {
    return undefined;
  }
  return base === xdg ? path.join(xdg, 'pgbk') : path.join(base, '.cache', 'pgbk');
}

/** The parsed JSON in the cache file, or undefined (absent, unreadable, not ours, not JSON). */
export function readCacheJson(dir: string, name: string): unknown {
  const bytes = readCacheBytes(dir, name);
  try {
    return bytes === undefined ? undefined : (JSON.parse(bytes.toString('utf8')) as unknown);
  } catch {
    return undefined;
  }
}

/** The cache file's bytes, or undefined (absent, unreadable, not ours or writable by others). */
export function readCacheBytes(dir: string, name: string): Buffer | undefined {
  const file = path.join(dir, name);
  try {
    const st = statSync(file);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) return undefined;
    if ((st.mode & 0o022) !== 0) return undefined;
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Replace the cache file; false when it could not be written (the caller just goes on). */
export function writeCacheJson(dir: string, name: string, data: unknown): boolean {
  return writeCacheBytes(dir, name, JSON.stringify(data));
}

/** Replace the cache file with `data`; false when it could not be written. */
export function writeCacheBytes(dir: string, name: string, data: string | Uint8Array): boolean {
  const file = path.join(dir, name);
  const temp = path.join(dir, `.${name}.${process.pid}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(temp, data, { mode: 0o600 });
    renameSync(temp, file);
    pruneOldest(dir);
    return true;
  } catch {
    try {
      rmSync(temp, { force: true });
    } catch {
      // nothing more to do
    }
    return false;
  }
}

/** Entries kept per user: one per config file and catalog used; the least recently written go. */
export const MAX_CACHE_FILES = 64;

function pruneOldest(dir: string): void {
  const names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  if (names.length <= MAX_CACHE_FILES) return;
  const byAge = names.map((n) => ({ n, t: statSync(path.join(dir, n)).mtimeMs })).sort((a, b) => a.t - b.t);
  for (const { n } of byAge.slice(0, names.length - MAX_CACHE_FILES)) rmSync(path.join(dir, n), { force: true });
}
