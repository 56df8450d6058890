import { deleteBackup, readBackupIfExists } from '../catalog/index.js';
import type { CleanupFailedAction, DeleteBackupAction } from '../model/types.js';
import type { ActionResult, ExecContext } from './context.js';

/**
 * Delete one backup the plan declared obsolete. Re-checked at execution: a backup pinned with
 * `keep` or being read by a restore since the plan was made is not deleted.
 */
export async function executeDeleteBackup(ctx: ExecContext, action: DeleteBackupAction | CleanupFailedAction): Promise<ActionResult> {
  const record = await readBackupIfExists(ctx.catalog, ctx.server.name, action.backupId);
  if (record === undefined) return { action, outcome: 'skipped', detail: 'already deleted' };
  if (record.keep !== 'none') return { action, outcome: 'skipped', detail: `pinned (keep ${record.keep}) since the plan was made` };
  if (record.status === 'DONE' && (record.inUse ?? []).length > 0) return { action, outcome: 'skipped', detail: 'in use by a restore' };
  if (action.kind === 'cleanup-failed' && record.status !== 'FAILED' && record.status !== 'STARTED') {
    return { action, outcome: 'skipped', detail: `status is ${record.status}, not FAILED` };
  }
  if (action.kind === 'delete-backup' && record.status !== 'DONE') {
    return { action, outcome: 'skipped', detail: `status is ${record.status}, not DONE` };
  }
  await deleteBackup(ctx.catalog, ctx.server.name, action.backupId);
  return { action, outcome: 'done', detail: 'deleted' };
}
