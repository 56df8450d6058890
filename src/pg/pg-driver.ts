/**
 * The `pg` driver, loaded on first use (commands that only read the catalog never need it).
 *
 * Why not a plain import: when pg loads, its lib/stream.js asks whether it runs in a Cloudflare
 * Worker, and on Node 20 (no `navigator`) that check reads the global `Response`. Node defines
 * `Response` as a lazy accessor that loads its whole fetch implementation (undici) on first read:
 * ~20 ms of every process that talks to PostgreSQL — half of an apply's server probe, and a base
 * backup's start counts against the bare pg_basebackup it wraps (issue 13 item 2). pgbk never
 * uses fetch there. So the accessor is hidden while pg's modules are evaluated — synchronously,
 * with require, so no other code runs in between — and put back untouched afterwards: `Response`
 * still works, loading undici if and when something reads it. pg then takes its Node sockets, as it
 * does anyway outside Cloudflare.
 *
 * And from one file: scripts/bundle-sdk.mjs bundles pg (~40 CommonJS files) into pg-bundle.cjs next
 * to this module, loaded with a V8 code cache (lib/v8-code-cache.ts): ~5 ms instead of 17–22 ms of
 * resolving, reading and compiling each file. Without the bundle (the sources run directly) the
 * package itself is required.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { loadCommonJsCached } from '../lib/v8-code-cache.js';

/** pg as bundled by scripts/bundle-sdk.mjs, next to this module once built. */
export const PG_BUNDLE = fileURLToPath(new URL('./pg-bundle.cjs', import.meta.url));

let driver: typeof pg | undefined;

/** The driver, once per process. */
export function pgDriver(): typeof pg {
  driver ??= requireHidingResponse(loadDriver);
  return driver;
}

function loadDriver(): typeof pg {
  const bundled = loadCommonJsCached<typeof pg>(PG_BUNDLE, process.env, 'pg');
  if (bundled === undefined) return createRequire(import.meta.url)('pg') as typeof pg;
  // Written at exit, so that the entry holds what the command compiled (connect and query too).
  if (bundled.cache === 'absent') process.once('exit', () => bundled.save());
  return bundled.exports;
}

/** Run `load` with globalThis.Response hidden if it is still Node's unloaded lazy accessor. */
export function requireHidingResponse<T>(load: () => T): T {
  const lazy = Object.getOwnPropertyDescriptor(globalThis, 'Response');
  if (lazy?.get === undefined || lazy.configurable !== true) return load();
  Object.defineProperty(globalThis, 'Response', { value: undefined, configurable: true, writable: true, enumerable: lazy.enumerable === true });
  try {
    return load();
  } finally {
    Object.defineProperty(globalThis, 'Response', lazy);
  }
}
