/**
 * Counts over a plan: the "Plan: …" line, `--detailed-exitcode`, and scripts reading --json.
 */

import type { Plan } from '../model/types.js';

export interface PlanSummary {
  readonly actions: number;
  readonly warnings: number;
  readonly backupsToTake: number;
  readonly backupsToFinish: number;
  readonly backupsToDelete: number;
  readonly failedToCleanUp: number;
  /** Files archive-wal moves into the archive (segments, .history and .backup files). */
  readonly walToArchive: number;
  /** Segments prune-wal deletes (.backup files deleted with them are not counted). */
  readonly walToPrune: number;
  readonly bytesToPrune: number;
  readonly filesToQuarantine: number;
  /** restore-drill actions (issue 14); absent when there are none, so older outputs stay as they were. */
  readonly drillsToRun?: number;
}

export function planSummary(plan: Plan): PlanSummary {
  let backupsToTake = 0;
  let backupsToFinish = 0;
  let backupsToDelete = 0;
  let failedToCleanUp = 0;
  let walToArchive = 0;
  let walToPrune = 0;
  let bytesToPrune = 0;
  let filesToQuarantine = 0;
  let drillsToRun = 0;
  for (const a of plan.actions) {
    switch (a.kind) {
      case 'base-backup':
        backupsToTake++;
        break;
      case 'finish-backup':
        backupsToFinish++;
        break;
      case 'delete-backup':
        backupsToDelete++;
        break;
      case 'cleanup-failed':
        failedToCleanUp++;
        break;
      case 'archive-wal':
        walToArchive += a.files.length;
        break;
      case 'prune-wal':
        walToPrune += a.segments.length;
        bytesToPrune += a.bytes;
        break;
      case 'quarantine':
        filesToQuarantine++;
        break;
      case 'restore-drill':
        drillsToRun++;
        break;
      case 'sweep-chunks':
        break;
      default: {
        const unreachable: never = a;
        throw new Error(`unhandled action ${JSON.stringify(unreachable)}`);
      }
    }
  }
  return {
    actions: plan.actions.length,
    warnings: plan.warnings.length,
    backupsToTake,
    backupsToFinish,
    backupsToDelete,
    failedToCleanUp,
    walToArchive,
    walToPrune,
    bytesToPrune,
    filesToQuarantine,
    ...(drillsToRun === 0 ? {} : { drillsToRun }),
  };
}
