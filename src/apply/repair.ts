import { hostname } from 'node:os';
import { isOwnerAlive, readBackups, writeBackupRecord } from '../catalog/index.js';
import type { ExecContext } from './context.js';

/**
 * A STARTED backup whose owner process is gone (killed, host rebooted) can never complete. Under
 * the server lock, record it as FAILED so the next plan replaces it and later cleans it up
 * (DESIGN.md §4). Returns the ids repaired.
 */
export async function failOrphanedBackups(ctx: ExecContext): Promise<string[]> {
  const thisHost = hostname();
  const repaired: string[] = [];
  for (const b of await readBackups(ctx.catalog, ctx.server.name)) {
    if (b.status !== 'STARTED') continue;
    if (b.owner !== undefined && isOwnerAlive(b.owner, thisHost)) continue;
    const who = b.owner ? `pid ${b.owner.pid} on ${b.owner.host}` : 'an unknown process';
    const { owner: _owner, ...rest } = b;
    await writeBackupRecord(ctx.catalog, { ...rest, status: 'FAILED', error: `interrupted: ${who} stopped before the backup finished` });
    ctx.log(`${ctx.server.name}: backup ${b.id} marked FAILED (its owner ${who} is gone)`);
    repaired.push(b.id);
  }
  return repaired;
}
