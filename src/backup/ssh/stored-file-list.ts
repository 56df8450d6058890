/**
 * What the next `ssh` backup reads of the previous one: its file list (files.json: per file its
 * size, mtime, mode and chunk hashes), read through the stored-backup port (catalog/stored-source.ts)
 * so that it does not matter where the catalog keeps the backup.
 */

import { PgbkError } from '../../errors.js';
import type { StoredSource } from '../../catalog/stored-source.js';
import { type FileManifest, parseManifest } from './incremental.js';

/** The name of the `ssh` method's file list among a backup's stored files. */
export const FILE_LIST = 'files.json';

/**
 * The file list of the backup `source` holds; a CATALOG error naming the file when it is missing,
 * unreadable or not a pgbk file manifest (a basebackup backup has none).
 */
export async function readFileList(source: StoredSource): Promise<FileManifest> {
  const parts: Buffer[] = [];
  for await (const c of source.open(FILE_LIST)) parts.push(c);
  try {
    return parseManifest(Buffer.concat(parts).toString('utf8'));
  } catch (err) {
    throw new PgbkError('CATALOG', `${source.where(FILE_LIST)}: ${(err as Error).message}`, { path: source.where(FILE_LIST), cause: err });
  }
}
