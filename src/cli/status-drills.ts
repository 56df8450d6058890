/**
 * The restore drill and objectives part of `pgbk status` (issue 14), in a module of its own so that
 * status loads the drill code only for a server that has drills or objectives (issue 13 item 5:
 * every module counts in a read command's start).
 */
import { effectiveDrill, readDrills } from '../catalog/drills.js';
import type { CatalogRef } from '../catalog/open.js';
import type { ServerConfig } from '../config/resolved.js';
import type { DrillRecord } from '../model/types.js';
import { overviewOf } from '../model/wal-runs.js';
import { drillView, lastDrill, lastFinishedDrill } from '../plan/drill.js';
import { measureRto, rpoAgeSeconds } from '../plan/objectives.js';
import type { StatusFacts } from './status-facts.js';

export { drillText } from '../plan/drill.js';

/** The drill and objectives fields of one server's status entry; none for a server without either. */
export interface Recoverability {
  lastDrill?: ReturnType<typeof drillView> | null;
  runningDrill?: ReturnType<typeof drillView>;
  objectives?: {
    rpoSeconds: number | null;
    measuredRpoSeconds: number | null;
    rtoSeconds: number | null;
    measuredRtoSeconds: number | null;
    measuredByDrill: string | null;
    estimatedRtoSeconds: number | null;
    estimatedForBackup: string | null;
  };
}

/** The server's drill records as this host sees them (a RUNNING drill whose owner died is FAILED). */
export async function readEffectiveDrills(catalog: CatalogRef, server: string, thisHost: string): Promise<DrillRecord[]> {
  return (await readDrills(catalog, server)).map((d) => effectiveDrill(d, thisHost));
}

/**
 * Restore drills and objectives (issue 14), only for servers that have them, so the status of
 * every other server stays exactly as it was.
 */
export function recoverabilityEntry(s: ServerConfig, f: StatusFacts, now: Date): Recoverability {
  const drills = f.drills ?? [];
  const finished = lastFinishedDrill(drills);
  const latest = lastDrill(drills);
  const running = latest?.status === 'RUNNING' ? latest : undefined;
  const out: Record<string, unknown> = {};
  if (s.drill !== undefined || drills.length > 0) {
    out['lastDrill'] = finished === undefined ? null : drillView(finished);
    if (running !== undefined) out['runningDrill'] = drillView(running);
  }
  if (s.objectives !== undefined) {
    const rto = measureRto(drills, f.backups, f.wal, f.identity?.walSegmentSize ?? 16 * 1024 * 1024);
    const rpoAge = rpoAgeSeconds([overviewOf(f.wal).newestMtime], now);
    out['objectives'] = {
      rpoSeconds: s.objectives.rpoSeconds ?? null,
      measuredRpoSeconds: rpoAge === undefined ? null : Math.round(rpoAge),
      rtoSeconds: s.objectives.rtoSeconds ?? null,
      measuredRtoSeconds: rto.drill?.rtoSeconds ?? null,
      measuredByDrill: rto.drill?.id ?? null,
      estimatedRtoSeconds: rto.estimate?.seconds ?? null,
      estimatedForBackup: rto.estimate?.backupId ?? null,
    };
  }
  return out as Recoverability;
}
