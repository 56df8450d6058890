/**
 * Marking a backup "in use" while a restore reads it. Barman users lost backups when retention
 * deleted one mid-restore; here the restore adds {pid, host, since} to backup.json under the server
 * lock (so it cannot interleave with apply's delete), retention never deletes a marked backup, and
 * the mark is removed at the end, also on failure. A mark left by a restore that died on this host
 * is dropped the next time any restore marks or unmarks the backup.
 */

import os from 'node:os';
import { acquireLock } from '../catalog/lock.js';
import { isOwnerAlive, readBackup, writeBackupRecord } from '../catalog/backups.js';
import { asCatalogOwner } from '../catalog/owner.js';
import { PgbkError } from '../errors.js';
import { processIdentity } from '../lib/process-identity.js';
import type { BackupRecord, InUseEntry } from '../model/types.js';

export interface InUseMark {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** Start of the restoring process (lib/process-identity): a reused pid does not keep a mark alive. */
  readonly processStart?: string;
}

function liveOthers(entries: readonly InUseEntry[], mark: InUseMark, host: string): InUseEntry[] {
  return entries.filter((e) => !(e.pid === mark.pid && e.host === mark.host && e.since === mark.since) && isOwnerAlive(e, host));
}

async function update(
  catalog: string,
  server: string,
  id: string,
  timeoutMs: number,
  change: (record: BackupRecord) => BackupRecord | undefined,
): Promise<void> {
  // A restore started as root keeps root for the restored files; the lock and backup.json it
  // writes here must still belong to the catalog's owner (src/catalog/owner.ts).
  await asCatalogOwner(async () => {
    const lock = await acquireLock(catalog, server, { command: `restore ${id} (in-use mark)`, timeoutMs });
    try {
      const record = await readBackup(catalog, server, id);
      const next = change(record);
      if (next !== undefined) await writeBackupRecord(catalog, next);
    } finally {
      await lock.release();
    }
  });
}

/** Mark the backup in use; it must still be DONE (a delete may have raced with the choice). */
export async function markInUse(catalog: string, server: string, id: string, timeoutMs: number): Promise<InUseMark> {
  const host = os.hostname();
  const mark: InUseMark = { ...processIdentity(), host, since: new Date().toISOString() };
  await update(catalog, server, id, timeoutMs, (record) => {
    if (record.status !== 'DONE') {
      throw new PgbkError('CATALOG', `backup ${id} is ${record.status}, no longer DONE`, { server });
    }
    return { ...record, inUse: [...liveOthers(record.inUse ?? [], mark, host), mark] };
  });
  return mark;
}

/** Remove our mark (and marks of restores that died on this host). Missing backup: nothing to do. */
export async function clearInUse(catalog: string, server: string, id: string, mark: InUseMark, timeoutMs: number): Promise<void> {
  try {
    await update(catalog, server, id, timeoutMs, (record) => {
      if (record.status !== 'DONE') return undefined; // only a DONE backup is ever marked
      const remaining = liveOthers(record.inUse ?? [], mark, os.hostname());
      if (remaining.length === (record.inUse ?? []).length) return undefined;
      const { inUse: _old, ...rest } = record;
      return remaining.length === 0 ? rest : { ...rest, inUse: remaining };
    });
  } catch (err) {
    if (err instanceof PgbkError && err.code === 'NOT_FOUND') return;
    throw err;
  }
}
