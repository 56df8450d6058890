import { hostname } from 'node:os';
import {
  catalogKeys,
  deleteBackup,
  findLeftovers,
  findRecordlessBackups,
  isOwnerAlive,
  LEFTOVER_MIN_AGE_MS,
  repositoryOf,
  readBackups,
  removeLeftovers,
  restrictIdentityMode,
  writeBackupRecord,
} from '../catalog/index.js';
import type { Repository } from '../catalog/repository.js';
import { formatBytes } from '../lib/byte-size.js';
import { failedBackup } from '../model/types.js';
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
    if (isOwnerAlive(b.owner, thisHost)) continue;
    const who = `pid ${b.owner.pid} on ${b.owner.host}`;
    await writeBackupRecord(ctx.catalog, failedBackup(b, `interrupted: ${who} stopped before the backup finished`));
    ctx.log(`${ctx.server.name}: backup ${b.id} marked FAILED (its owner ${who} is gone)`);
    repaired.push(b.id);
  }
  return repaired;
}

function describeAge(ms: number): string {
  const hours = ms / 3600_000;
  return hours >= 48 ? `${Math.floor(hours / 24)} days` : `${hours.toFixed(1)} h`;
}

/**
 * Remove temp files that interrupted writes left behind (catalog/leftovers.ts), under the server
 * lock, and say so: one line per file. Done here rather than as a plan action because it is crash
 * repair like failOrphanedBackups — nothing a user would review or decide — and the plan must stay
 * identical whether or not some writer died an hour ago. Returns the relative paths removed.
 */
export async function reapLeftovers(ctx: ExecContext, nowMs: number = Date.now()): Promise<string[]> {
  let removed;
  try {
    await abortOrphanedUploads(ctx);
    if (await restrictIdentityMode(ctx.catalog, ctx.server.name))
      ctx.log(`${ctx.server.name}: server.json was world-readable; now 0640 like the rest of the catalog`);
    removed = await removeLeftovers(await findLeftovers(ctx.catalog, ctx.server.name, nowMs));
  } catch (err) {
    // Leftovers only cost space: failing to clean them must not stop archiving.
    ctx.log(`${ctx.server.name}: warning: could not clean up after interrupted writes: ${(err as Error).message}`);
    return [];
  }
  for (const l of removed) {
    ctx.log(
      `${ctx.server.name}: removed ${l.rel}, a temp file left by an interrupted write (${l.size} bytes, ${describeAge(l.ageMs)} old, writer pid ${l.pid} gone)`,
    );
  }
  return removed.map((l) => l.rel);
}

/**
 * Remove backup trees that have no backup.json (catalog/backups.ts findRecordlessBackups): what a
 * crash leaves when it interrupts a deletion, which removes backup.json first, or a start, which
 * claims the id before it writes the STARTED record. Nothing can restore from such a tree, and no
 * listing shows it; it only holds space. Under the server lock no pgbk is starting a backup of
 * this server, and the hour's margin (as for temp files) keeps a tree anything still writes to.
 * Crash repair, like reapLeftovers: not a plan action. Returns the ids removed.
 */
export async function reapRecordlessBackups(ctx: ExecContext, nowMs: number = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  try {
    for (const b of await findRecordlessBackups(ctx.catalog, ctx.server.name, nowMs)) {
      if (b.ageMs < LEFTOVER_MIN_AGE_MS) continue;
      await deleteBackup(ctx.catalog, ctx.server.name, b.id);
      ctx.log(
        `${ctx.server.name}: removed ${b.where}, a backup tree without backup.json left by an interrupted deletion or start (${formatBytes(b.bytes)}, ${describeAge(b.ageMs)} old)`,
      );
      removed.push(b.id);
    }
  } catch (err) {
    ctx.log(`${ctx.server.name}: warning: could not clean up interrupted backup deletions: ${(err as Error).message}`);
  }
  return removed;
}

/**
 * Object storage: multipart uploads of backups that a killed writer (or an abort that could not
 * reach the store) left open. Under the server lock no other process writes this server's
 * backups, so every open upload under its backups/ is orphaned, whatever its age; they cost
 * space until aborted and are never visible as objects.
 */
async function abortOrphanedUploads(ctx: ExecContext): Promise<void> {
  const repo = await repositoryOf(ctx.catalog);
  if (!('abortStaleUploads' in repo)) return;
  const n = await (repo as Repository & { abortStaleUploads(ms: number, now?: Date, under?: string): Promise<number> }).abortStaleUploads(
    0,
    new Date(),
    catalogKeys.backups(ctx.server.name),
  );
  if (n > 0) ctx.log(`${ctx.server.name}: aborted ${n} multipart upload${n === 1 ? '' : 's'} of backups left open by an interrupted writer`);
}
