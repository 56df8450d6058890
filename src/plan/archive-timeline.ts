/**
 * The newest timeline in the archive (its history file or any segment on it). Pure. A timeline
 * newer than the server's own means a restore that follows the latest timeline (the default)
 * replays another cluster's WAL, or this server is a stale old primary (check's "timeline" entry
 * and the plan's newer-timeline warning say so).
 */

import type { ArchivedWal } from '../model/types.js';

export interface NewestTimeline {
  readonly timeline: number;
  /** The first archived name on it: its history file, or a segment. */
  readonly from: string;
}

export function newestArchivedTimeline(wal: Pick<ArchivedWal, 'histories' | 'segments'>): NewestTimeline | undefined {
  let newest: NewestTimeline | undefined;
  for (const name of [...wal.histories, ...wal.segments]) {
    const tli = Number.parseInt(name.slice(0, 8), 16);
    if (Number.isFinite(tli) && (newest === undefined || tli > newest.timeline)) newest = { timeline: tli, from: name };
  }
  return newest;
}
