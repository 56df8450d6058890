/**
 * A timeline in the archive newer than the server's own. PostgreSQL's restore follows the latest
 * timeline by default (recovery_target_timeline = 'latest'), so once a copy restored from this
 * catalog (a test restore left archiving, an old primary brought back) is promoted and archives as
 * this server, a later restore of an older backup replays the copy's timeline instead of the
 * server's, and says nothing. The server's own timeline is always the newest one when the archive
 * is its alone (a promoted standby becomes the server, and the newer timeline with it). Pure.
 */

import type { ArchivedWal } from '../model/types.js';
import { fail, pass, type CheckResult } from './types.js';

function timelineOf(name: string): number {
  return Number.parseInt(name.slice(0, 8), 16);
}

export function checkArchiveTimeline(server: string, serverTimeline: number, wal: Pick<ArchivedWal, 'histories' | 'segments'>): CheckResult {
  let newest = 0;
  let from = '';
  for (const name of [...wal.histories, ...wal.segments]) {
    const tli = timelineOf(name);
    if (Number.isFinite(tli) && tli > newest) {
      newest = tli;
      from = name;
    }
  }
  if (newest <= serverTimeline) {
    let detail: string;
    if (newest === 0) detail = `server on timeline ${serverTimeline}; nothing archived yet`;
    else if (newest === serverTimeline) detail = `server on timeline ${serverTimeline}, the newest in the archive`;
    // A promoted server whose new timeline has not reached the archive yet (or whose archiving is
    // failing: the archiving entry says which): nothing newer competes with it.
    else detail = `server on timeline ${serverTimeline}; the archive holds up to timeline ${newest}, none of timeline ${serverTimeline} yet`;
    return pass('timeline', detail);
  }
  return fail(
    'timeline',
    `the archive holds timeline ${newest} (${from}), newer than the server's timeline ${serverTimeline}: another cluster restored from this catalog (a promoted restore or test copy, an old primary) archived into it as server ${server}`,
    `a restore that follows the latest timeline (the default) would replay timeline ${newest}, not this server's: restore with --target-timeline ${serverTimeline} (or current) until that cluster's history file and segments are moved out of the archive; restore copies with --no-archive`,
  );
}
