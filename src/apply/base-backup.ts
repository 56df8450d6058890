import { readBackup } from '../catalog/index.js';
import { backupMethodFor } from '../backup/method.js';
import type { BackupRecord } from '../model/types.js';
import { archiveAllIncoming } from './archive-wal.js';
import type { ExecContext } from './context.js';
import { finishIfComplete } from './finish-backup.js';
import { mark } from '../lib/profile.js';

/**
 * The base-backup action: the configured method takes the backup; then the WAL it needs, which
 * PostgreSQL archived at backup end (into incoming/ for push servers), is archived so the backup
 * can be DONE in this same apply. Returns the final record.
 *
 * The basebackup method starts that archiving itself as soon as the server reports the end segment
 * archived (TakeHooks), beside its own checksum pass: on two cores the two take as long as the
 * longer one instead of their sum (~0.03 s of a backup's fixed cost, issue 13 item 2). What is in
 * incoming/ afterwards (the ssh method, a server that archived late) is archived here as before.
 */
export async function executeBaseBackup(ctx: ExecContext, slot: string): Promise<BackupRecord> {
  const method = await backupMethodFor(ctx.server, ctx.catalog);
  const record = await method.take(ctx, slot, {
    endSegmentArchived: async () => {
      await archiveAllIncoming(ctx);
    },
  });
  if (record.status === 'FAILED') return record;
  await archiveAllIncoming(ctx);
  mark('end WAL archived from incoming/');
  const finished = await finishIfComplete(ctx, record.id);
  mark('finish (DONE when its WAL is complete)');
  if (!finished.finished && record.status === 'WAITING_FOR_WAL') ctx.log(waitingNote(ctx, record.id, finished.detail));
  return readBackup(ctx.catalog, ctx.server.name, record.id);
}

/**
 * Why the backup is not DONE yet and what ends the wait: the data is complete, its WAL is not all
 * archived. From a standby this is the usual case: a standby cannot switch segments, so the one
 * holding the backup's end is archived only when the primary finishes it.
 */
function waitingNote(ctx: ExecContext, id: string, detail: string): string {
  const fromStandby =
    ctx.facts?.inRecovery === true
      ? '; taken from a standby, whose primary archives that segment only when it finishes it (archive_timeout on the primary bounds the wait)'
      : '';
  return `${ctx.server.name}: backup ${id} is WAITING_FOR_WAL (${detail})${fromStandby}; the next apply makes it DONE once its WAL is archived`;
}
