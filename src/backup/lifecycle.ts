/**
 * One backup lifecycle, shared by every backup method: a fresh id (a backup directory created only
 * if absent), and the sha256 of the files a method stored (checked again by restore and verify).
 * The record's states (STARTED → WAITING_FOR_WAL → DONE | FAILED) are written by the methods through
 * catalog/backups.ts; DONE is decided by apply/finish-backup.ts once the WAL range is archived.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBackupDir, newBackupId } from '../catalog/index.js';
import { PgbkError } from '../errors.js';
import { sha256Hasher } from '../lib/checksum.js';
import { mapLimited } from '../lib/map-limited.js';
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

const READ_CHUNK = 1 << 20;

/**
 * sha256 and size of one stored file, and its data made durable (fsync) on the same descriptor:
 * a method that leaves syncing to this pass (pg_basebackup --no-sync) pays for reading and
 * syncing each file once.
 */
async function checksumAndSync(file: string): Promise<{ readonly sha256: string; readonly bytes: number }> {
  const fh = await open(file, 'r');
  try {
    const hash = sha256Hasher();
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, READ_CHUNK, bytes);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      bytes += bytesRead;
    }
    await fh.sync();
    return { sha256: hash.hex(), bytes };
  } finally {
    await fh.close();
  }
}

/**
 * sha256 of each named stored file (checked again by restore/verify), their total size, and their
 * data fsynced. The files are read in parallel (few: one tar per tablespace and the manifest).
 */
export async function checksumAndSyncStoredFiles(dir: string, names: readonly string[]): Promise<{ checksums: Record<string, string>; stored: number }> {
  const sorted = [...names].sort();
  const sums = await mapLimited(sorted, 4, (name) => checksumAndSync(path.join(dir, name)));
  const checksums: Record<string, string> = {};
  let stored = 0;
  sorted.forEach((name, i) => {
    const sum = sums[i]!;
    checksums[name] = sum.sha256;
    stored += sum.bytes;
  });
  return { checksums, stored };
}
