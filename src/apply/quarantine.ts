import { access } from 'node:fs/promises';
import path from 'node:path';
import { incomingDir, quarantineFile } from '../catalog/index.js';
import type { QuarantineAction } from '../model/types.js';
import type { ActionResult, ExecContext } from './context.js';

/** Move a file the planner judged not archivable out of incoming/ into errors/, with its reason. */
export async function executeQuarantine(ctx: ExecContext, action: QuarantineAction): Promise<ActionResult> {
  const source = path.join(incomingDir(ctx.catalog, ctx.server.name), action.file);
  try {
    await access(source);
  } catch {
    return { action, outcome: 'skipped', detail: 'no longer in incoming/' };
  }
  const target = await quarantineFile(ctx.catalog, ctx.server.name, source, action.reason);
  return { action, outcome: 'done', detail: `moved to ${target}` };
}
