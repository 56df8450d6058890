import { toPgbkError } from '../errors.js';
import type { Action } from '../model/types.js';
import { executeArchiveWal } from './archive-wal.js';
import { executeBaseBackup } from './base-backup.js';
import type { ActionResult, ExecContext } from './context.js';
import { executeDeleteBackup } from './delete-backup.js';
import { executeFinishBackup } from './finish-backup.js';
import { executePruneWal } from './prune-wal.js';
import { executeQuarantine } from './quarantine.js';

/** Run one action; every executor re-checks its own precondition, so a repeated action is a no-op. */
export async function executeAction(ctx: ExecContext, action: Action): Promise<ActionResult> {
  switch (action.kind) {
    case 'archive-wal':
      return executeArchiveWal(ctx, action);
    case 'quarantine':
      return executeQuarantine(ctx, action);
    case 'base-backup': {
      const record = await executeBaseBackup(ctx, action.slot);
      return {
        action,
        outcome: 'done',
        detail: record.status === 'DONE' ? `backup ${record.id} DONE` : `backup ${record.id} ${record.status}`,
      };
    }
    case 'finish-backup':
      return executeFinishBackup(ctx, action);
    case 'delete-backup':
    case 'cleanup-failed':
      return executeDeleteBackup(ctx, action);
    case 'prune-wal':
      return executePruneWal(ctx, action);
    // Loaded on use: a backup run should not start up with the drill (restore, ssh2) and chunk-sweep code.
    case 'restore-drill':
      return (await import('../drill/index.js')).executeRestoreDrill(ctx, action);
    case 'sweep-chunks':
      return (await import('./sweep-chunks.js')).executeSweepChunks(ctx, action);
    default: {
      const never: never = action;
      return never;
    }
  }
}

/** Actions that destroy data: after a failure earlier in the same server's run, they are held back. */
function isDestructive(action: Action): boolean {
  return action.kind === 'delete-backup' || action.kind === 'prune-wal' || action.kind === 'cleanup-failed' || action.kind === 'sweep-chunks';
}

/**
 * Execute one server's actions in plan order. After a failure the server's destructive actions are
 * skipped: retention computed from a state that did not come about must not delete anything.
 */
export async function executeServerActions(ctx: ExecContext, actions: readonly Action[]): Promise<ActionResult[]> {
  const results: ActionResult[] = [];
  let failed = false;
  for (const action of actions) {
    if (ctx.signal?.aborted === true) {
      results.push({ action, outcome: 'skipped', detail: 'interrupted before it started' });
      continue;
    }
    if (failed && isDestructive(action)) {
      results.push({ action, outcome: 'skipped', detail: 'held back: an earlier action for this server failed' });
      continue;
    }
    try {
      const r = await executeAction(ctx, action);
      results.push(r);
      if (r.outcome === 'failed') failed = true;
    } catch (err) {
      const e = toPgbkError(err, { server: ctx.server.name });
      results.push({ action, outcome: 'failed', detail: e.message + (e.hint ? ` (hint: ${e.hint})` : '') });
      failed = true;
    }
  }
  return results;
}
