/** What `pgbk status` reads from the catalog for one server (status.ts, status-drills.ts). */
import type { readLock } from '../catalog/lock.js';
import type { ArchivedWal, BackupRecord, DrillRecord, IncomingFile, ServerIdentity } from '../model/types.js';
import type { WalOverview } from '../model/wal-runs.js';

export type LockInfo = Awaited<ReturnType<typeof readLock>>;

/** What status reads from the catalog for one server. */
export interface StatusFacts {
  readonly identity: ServerIdentity | undefined;
  readonly backups: readonly BackupRecord[];
  /** The archive: a full listing, or its overview (catalog/wal-overview.ts). */
  readonly wal: ArchivedWal | WalOverview;
  readonly incoming: readonly IncomingFile[];
  readonly quarantined: number;
  readonly lock: LockInfo;
  /** Restore drill records (issue 14), sorted by id; absent or empty: nothing is shown about drills. */
  readonly drills?: readonly DrillRecord[];
}
