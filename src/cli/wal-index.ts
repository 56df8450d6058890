import { userCacheDir } from '../lib/user-cache.js';
import type { CliIo } from './io.js';

/**
 * Where `list` and `status` keep their per-user WAL index (catalog/wal-overview.ts): the user's
 * cache directory. PGBK_NO_CACHE=1 lists the whole archive instead.
 */
export function indexOptions(io: CliIo): { cacheDir?: string } {
  if (io.env['PGBK_NO_CACHE'] === '1') return {};
  const cacheDir = userCacheDir(io.env);
  return cacheDir === undefined ? {} : { cacheDir };
}
