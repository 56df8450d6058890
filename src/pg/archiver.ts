/**
 * Waiting for PostgreSQL's archiver, the way pg_backup_stop(wait_for_archive) would, but from the
 * client: a base backup taken without the server's own wait (BASE_BACKUP WAIT false) ends before
 * its last segment is archived, and the caller decides how long that may take.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { withPgClient } from './pg-session.js';

/** Pure: has the archiver got as far as segment `walName`, given pg_stat_archiver.last_archived_wal? */
export function archivedUpTo(lastArchivedWal: string, walName: string): boolean {
  // Same timeline only: names order like the segments, and a NAME.OFFSET.backup or NAME.partial
  // sorts after its own segment. A .history file ("00000002.history") has another shape: no.
  if (!/^[0-9A-F]{24}/.test(lastArchivedWal)) return false;
  return lastArchivedWal.slice(0, 8) === walName.slice(0, 8) && lastArchivedWal.slice(0, 24) >= walName;
}

/**
 * Poll pg_stat_archiver until the server has archived segment `walName` (true) or timeoutMs has
 * passed (false). True at once when this server does not archive (archive_mode off, or on a
 * standby unless archive_mode is always): there is nothing of its own to wait for then, and the
 * catalog's check of the archive decides. Polls often at first — the archiver usually finishes
 * within tens of milliseconds of the WAL switch at backup end — then every 200 ms.
 */
export async function waitForArchivedWal(conninfo: string, walName: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  return withPgClient(conninfo, async (client) => {
    const mode = await client.query<{ mode: string; recovery: boolean }>("SELECT current_setting('archive_mode') AS mode, pg_is_in_recovery() AS recovery");
    const row = mode.rows[0];
    if (row === undefined || row.mode === 'off' || (row.recovery && row.mode !== 'always')) return true;
    const deadline = Date.now() + timeoutMs;
    for (let polls = 0; ; polls++) {
      const r = await client.query<{ last: string }>("SELECT coalesce(last_archived_wal, '') AS last FROM pg_stat_archiver");
      if (archivedUpTo(r.rows[0]?.last ?? '', walName)) return true;
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted === true) return false;
      await sleep(Math.min(left, polls < 40 ? 10 : 200));
    }
  });
}
