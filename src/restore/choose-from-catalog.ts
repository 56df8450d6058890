/**
 * The backup a restore uses, chosen from what the catalog holds: server.json, the backups, the
 * archived WAL and its timeline histories, read (at once where they can be) and handed to
 * chooseBackup (choose-backup.ts). Only reads.
 */

import { readBackups } from '../catalog/backups.js';
import { readIdentity } from '../catalog/identity.js';
import { listArchivedWal, readArchivedWal } from '../catalog/wal-archive.js';
import { PgbkError } from '../errors.js';
import { chooseBackup, type Choice } from './choose-backup.js';
import type { RecoveryTarget, TargetTimeline } from './target.js';
import { parseHistory, type HistoryEntry } from './timeline-history.js';

/** Read what the choice needs from the catalog and choose. No writes. */
export async function chooseFromCatalog(
  catalog: string,
  server: string,
  requested: string | undefined,
  target: RecoveryTarget,
  timeline: TargetTimeline,
  now: Date,
): Promise<Choice> {
  // The three reads at once (one round trip to object storage instead of two); server.json's
  // absence is still the error reported first.
  const reads = Promise.all([readBackups(catalog, server), listArchivedWal(catalog, server)]);
  reads.catch(() => undefined);
  const identity = await readIdentity(catalog, server);
  if (identity === undefined) {
    throw new PgbkError('NOT_FOUND', `the catalog has nothing for server ${server} yet (no server.json)`, { server });
  }
  const [backups, wal] = await reads;
  const histories = new Map<number, readonly HistoryEntry[]>();
  for (const name of wal.histories) {
    const tli = Number.parseInt(name.slice(0, 8), 16);
    histories.set(tli, parseHistory((await readArchivedWal(catalog, server, name)).toString('utf8'), tli, name));
  }
  return chooseBackup({
    server,
    backups,
    requested,
    target,
    timeline,
    segments: wal.segments,
    histories,
    segSize: identity.walSegmentSize,
    nowMicros: BigInt(now.getTime()) * 1000n,
  });
}
