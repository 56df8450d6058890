import { listArchivedWal, readBackupIfExists, writeBackupRecord } from '../catalog/index.js';
import { missingSegments } from '../plan/wal.js';
import type { FinishBackupAction } from '../model/types.js';
import type { ActionResult, ExecContext } from './context.js';
import { plural } from '../lib/plural.js';

/**
 * Mark a WAITING_FOR_WAL backup DONE if — re-checked now, against the archive on disk — every
 * segment from its beginWal to its endWal is archived. Otherwise it stays waiting (not an error:
 * the WAL may still be on its way).
 */
export async function finishIfComplete(ctx: ExecContext, id: string): Promise<{ finished: boolean; detail: string }> {
  const record = await readBackupIfExists(ctx.catalog, ctx.server.name, id);
  if (record === undefined) return { finished: false, detail: 'backup no longer exists' };
  if (record.status === 'DONE') return { finished: true, detail: 'already DONE' };
  if (record.status !== 'WAITING_FOR_WAL') {
    return { finished: false, detail: `status is ${record.status}` };
  }
  const segSize = ctx.identity?.walSegmentSize ?? 16 * 1024 * 1024;
  const archived = await listArchivedWal(ctx.catalog, ctx.server.name);
  const missing = missingSegments(record.beginWal, record.endWal, archived.segments, segSize);
  if (missing.length > 0) {
    return { finished: false, detail: `still waiting for ${plural(missing.length, 'segment')}, first ${missing[0]}` };
  }
  await writeBackupRecord(ctx.catalog, { ...record, status: 'DONE' });
  ctx.log(`${ctx.server.name}: backup ${id} is DONE (WAL ${record.beginWal}…${record.endWal} archived)`);
  return { finished: true, detail: 'DONE' };
}

export async function executeFinishBackup(ctx: ExecContext, action: FinishBackupAction): Promise<ActionResult> {
  const r = await finishIfComplete(ctx, action.backupId);
  return { action, outcome: r.finished ? 'done' : 'skipped', detail: r.detail };
}
