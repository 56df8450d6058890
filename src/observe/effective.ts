import { isOwnerAlive } from '../catalog/backups.js';
import type { BackupRecord } from '../model/types.js';

/**
 * A STARTED backup with no live owner can never finish: show it as what it is. Read-only (apply
 * persists it under the lock); `list` and `show` use it too, so every view agrees with the plan.
 */
export function effectiveBackup(b: BackupRecord, thisHost: string): BackupRecord {
  if (b.status !== 'STARTED') return b;
  if (isOwnerAlive(b.owner, thisHost)) return b;
  const who = `pid ${b.owner.pid} on ${b.owner.host}`;
  return { ...b, status: 'FAILED', error: `interrupted: ${who} is gone` };
}
