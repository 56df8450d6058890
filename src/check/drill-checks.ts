/**
 * Recoverability checks (issue 14): the last restore drill passed and is not older than its
 * schedule allows; the declared objectives are met (the planner's own rpo/rto verdicts, so check
 * and plan never disagree). Produced only for servers that declare a drill or objectives.
 */

import { previousFireTime } from '../config/cron.js';
import { formatDuration } from '../config/duration.js';
import type { ServerConfig } from '../config/resolved.js';
import type { ObservedServer, PlanWarning } from '../model/types.js';
import { drillText, drillView, lastFinishedDrill } from '../plan/drill.js';
import { fail, pass, type CheckResult } from './types.js';

/**
 * FAILED when the last finished drill failed, or when the schedule fired more than `graceMs` plus
 * the time limit ago and no drill was run for that slot (nor a later one).
 */
export function checkDrill(server: ServerConfig, observed: ObservedServer, now: Date, graceMs = 3600_000): CheckResult | undefined {
  const drill = server.drill;
  if (drill === undefined) return undefined;
  const drills = observed.drills ?? [];
  const last = lastFinishedDrill(drills);
  if (last?.status === 'FAILED') {
    return fail(
      'restore drill',
      `last drill ${drillText(drillView(last), now)}`,
      `see pgbk status ${server.name}; fix the cause and run pgbk apply (a drill runs again at the next schedule slot)`,
    );
  }
  const fired = previousFireTime(drill.schedule, drill.timezone, now);
  if (fired !== undefined && now.getTime() - fired.getTime() > graceMs + drill.timeLimitSeconds * 1000) {
    const covered = drills.some((d) => Date.parse(d.slot) >= fired.getTime());
    if (!covered) {
      return fail(
        'restore drill',
        `drill schedule "${drill.schedule}" fired ${fired.toISOString()} and no drill was run for it; ${last === undefined ? 'no drill yet' : `last drill ${drillText(drillView(last), now)}`}`,
        'is the daemon (or the cron job running pgbk apply) running? see its log, or run pgbk apply now',
      );
    }
  }
  return pass('restore drill', last === undefined ? 'no drill due yet' : `last drill ${drillText(drillView(last), now)}`);
}

/** The planner's objective warnings for this server as one check. */
export function checkObjectives(server: ServerConfig, warnings: readonly PlanWarning[]): CheckResult | undefined {
  if (server.objectives === undefined) return undefined;
  const missed = warnings.filter((w) => w.server === server.name && (w.code === 'rpo-objective' || w.code === 'rto-objective'));
  if (missed.length > 0) {
    return fail(
      'objectives',
      missed.map((w) => w.message).join('; '),
      'see pgbk plan; faster storage, more frequent backups or a smaller archive_timeout shorten RTO and RPO',
    );
  }
  const o = server.objectives;
  const parts = [
    ...(o.rpoSeconds === undefined ? [] : [`rpo ${formatDuration(o.rpoSeconds)}`]),
    ...(o.rtoSeconds === undefined ? [] : [`rto ${formatDuration(o.rtoSeconds)}`]),
  ];
  return pass('objectives', `${parts.join(', ')} met`);
}
