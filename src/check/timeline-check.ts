/**
 * A timeline in the archive newer than the server's own. PostgreSQL's restore follows the latest
 * timeline by default (recovery_target_timeline = 'latest'), so once a copy restored from this
 * catalog (a test restore left archiving, an old primary brought back) is promoted and archives as
 * this server, a later restore of an older backup replays the copy's timeline instead of the
 * server's, and says nothing. The server's own timeline is always the newest one when the archive
 * is its alone (a promoted standby becomes the server, and the newer timeline with it). Pure.
 */

import type { ArchivedWal } from '../model/types.js';
import { newestArchivedTimeline } from '../plan/archive-timeline.js';
import { fail, pass, type CheckResult } from './types.js';

export function checkArchiveTimeline(server: string, serverTimeline: number, wal: Pick<ArchivedWal, 'histories' | 'segments'>): CheckResult {
  const found = newestArchivedTimeline(wal);
  const newest = found?.timeline ?? 0;
  const from = found?.from ?? '';
  if (newest <= serverTimeline) {
    let detail: string;
    if (newest === 0) detail = `server on timeline ${serverTimeline}; nothing archived yet`;
    else if (newest === serverTimeline) detail = `server on timeline ${serverTimeline}, the newest in the archive`;
    // A promoted server whose new timeline has not reached the archive yet (or whose archiving is
    // failing: the archiving entry says which): nothing newer competes with it.
    else detail = `server on timeline ${serverTimeline}; the archive holds up to timeline ${newest}, none of timeline ${serverTimeline} yet`;
    return pass('timeline', detail);
  }
  // Which of the two is wrong cannot be told from here: a copy that archived as the server, or
  // this server an old primary that went on after a failover promoted another cluster.
  return fail(
    'timeline',
    `the archive holds timeline ${newest} (${from}), newer than the server's timeline ${serverTimeline}: either another cluster restored from this catalog (a promoted restore or test copy) archived into it as server ${server}, or this server is an old primary still running after a failover promoted timeline ${newest}`,
    `if timeline ${newest} is the primary now, stop this server and point ${server}'s connection at the new primary (its backups and WAL are the ones to keep); if it is a copy's, restore with --target-timeline ${serverTimeline} (or current) until that cluster's history file and segments are moved out of the archive, and restore copies with --no-archive; a restore that follows the latest timeline (the default) replays timeline ${newest}`,
  );
}
