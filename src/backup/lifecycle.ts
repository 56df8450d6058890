/**
 * One backup lifecycle, shared by every backup method: a fresh id (a backup directory created only
 * if absent), and the sha256 of the files a method stored (checked again by restore and verify).
 * The record's states (STARTED → WAITING_FOR_WAL → DONE | FAILED) are written by the methods through
 * catalog/backups.ts; DONE is decided by apply/finish-backup.ts once the WAL range is archived.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBackupDir, newBackupId } from '../catalog/index.js';
import { PgbkError } from '../errors.js';
import { sha256OfFile } from '../lib/checksum.js';
import type { BackupContext } from './context.js';

/** Allocate a fresh backup id; ids are per-second, so a collision waits for the next second. */
export async function allocateBackupId(ctx: BackupContext): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const id = newBackupId(new Date());
    if ((await createBackupDir(ctx.catalog, ctx.server.name, id)) === 'created') return id;
    await sleep(1000 - (Date.now() % 1000) + 5);
  }
  throw new PgbkError('CATALOG', 'could not allocate a backup id (directory exists each second)', { server: ctx.server.name });
}

/** sha256 of every stored file (checked again by restore/verify) and their total size. */
export async function checksumStoredFiles(dir: string): Promise<{ checksums: Record<string, string>; stored: number }> {
  const checksums: Record<string, string> = {};
  let stored = 0;
  const names = (await readdir(dir)).filter((n) => n !== 'backup.json' && !n.startsWith('.')).sort();
  for (const name of names) {
    const file = path.join(dir, name);
    stored += (await stat(file)).size;
    checksums[name] = await sha256OfFile(file);
  }
  return { checksums, stored };
}
