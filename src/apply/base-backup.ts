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
 */
export async function executeBaseBackup(ctx: ExecContext, slot: string): Promise<BackupRecord> {
  const method = await backupMethodFor(ctx.server, ctx.catalog);
  const record = await method.take(ctx, slot);
  if (record.status === 'FAILED') return record;
  await archiveAllIncoming(ctx);
  mark('end WAL archived from incoming/');
  await finishIfComplete(ctx, record.id);
  mark('finish (DONE when its WAL is complete)');
  return readBackup(ctx.catalog, ctx.server.name, record.id);
}
