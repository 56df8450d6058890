/**
 * incoming/: where archive_command (pgbk wal-push or a plain cp/rsync) drops WAL for the archiver.
 */

import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import type { IncomingFile } from '../model/types.js';
import { classifyIncoming } from '../pg/wal-name.js';
import { incomingDir } from './layout.js';
import { localRootOf } from './local-spool.js';

/**
 * Files in incoming/, sorted by name, each classified (in-flight names included, so the planner
 * can tell them apart from unknown files). A file that vanishes while listed is skipped; anything
 * that is not a regular file is reported as unknown.
 */
export async function listIncoming(catalog: string, server: string): Promise<IncomingFile[]> {
  // An object-storage catalog without a spool has no incoming/: WAL arrives through wal-push.
  if (localRootOf(catalog) === undefined) return [];
  const dir = incomingDir(catalog, server);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PgbkError('CATALOG', `cannot list incoming/: ${(err as Error).message}`, { server, path: dir });
  }
  const files: IncomingFile[] = [];
  for (const name of names.sort()) {
    try {
      const st = await lstat(path.join(dir, name));
      const kind = st.isFile() ? classifyIncoming(name) : 'unknown';
      files.push({ name, kind, size: st.isFile() ? st.size : 0, mtime: st.mtime.toISOString() });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return files;
}
