import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { archiveWalFile, fsyncDir, incomingDir, listIncoming, quarantineFile } from '../catalog/index.js';
import { mapLimited } from '../lib/map-limited.js';
import { PgbkError } from '../errors.js';
import { IN_FLIGHT_GRACE_MS, type ArchiveWalAction } from '../model/types.js';
import { isSegmentName } from '../pg/wal-name.js';
import type { ActionResult, ExecContext } from './context.js';
import { plural } from '../lib/plural.js';

export interface ArchiveTally {
  archived: number;
  duplicates: number;
  quarantined: number;
  missing: number;
  inFlight: number;
}

/**
 * Archive the named files from incoming/. Each file is either made durable in the archive (then the
 * incoming copy is dropped), recognised as an exact duplicate of what is archived (dropped too), or
 * quarantined to errors/ with the reason — never overwritten, never silently deleted.
 */
export async function archiveIncoming(ctx: ExecContext, files: readonly string[]): Promise<ArchiveTally> {
  const identity = ctx.identity;
  if (identity === undefined) {
    throw new PgbkError('IDENTITY', 'cannot archive WAL before the cluster identity is known', {
      server: ctx.server.name,
      hint: 'set `connection` so pgbk can ask the server for its system identifier',
    });
  }
  const tally: ArchiveTally = { archived: 0, duplicates: 0, quarantined: 0, missing: 0, inFlight: 0 };
  // Nothing to archive (always so on an s3:// catalog without s3.spool, where wal-push writes
  // straight to the bucket): no incoming/ to name, so `pgbk backup` needs no spool.
  if (files.length === 0) return tally;
  const dir = incomingDir(ctx.catalog, ctx.server.name);
  const archiveOne = async (name: string): Promise<void> => {
    const sourcePath = path.join(dir, name);
    let outcome;
    try {
      if (isSegmentName(name)) {
        // A plain `cp` archive_command writes in place: a short segment touched moments ago is
        // still arriving. Leave it for the next run rather than quarantine good WAL.
        const st = await stat(sourcePath);
        if (st.size < identity.walSegmentSize && Date.now() - st.mtimeMs < IN_FLIGHT_GRACE_MS) {
          tally.inFlight++;
          return;
        }
      }
      outcome = await archiveWalFile({
        catalog: ctx.catalog,
        server: ctx.server.name,
        sourcePath,
        name,
        identity,
        compression: ctx.server.wal.compression,
      });
    } catch (err) {
      // Gone since the plan was made (another apply archived it): the precondition no longer holds.
      // (archiveWalFile reports a source that vanished as PgbkError NOT_FOUND, stat as ENOENT.)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err instanceof PgbkError && err.code === 'NOT_FOUND')) {
        tally.missing++;
        return;
      }
      throw err;
    }
    if (outcome.result === 'rejected') {
      await quarantineFile(ctx.catalog, ctx.server.name, sourcePath, outcome.reason);
      ctx.log(`${ctx.server.name}: quarantined incoming/${name}: ${outcome.reason}`);
      tally.quarantined++;
      return;
    }
    // Durable in the archive (or already there, byte-identical): the incoming copy is redundant.
    await unlink(sourcePath);
    if (outcome.result === 'archived') tally.archived++;
    else tally.duplicates++;
  };
  await mapLimited(files, ARCHIVE_CONCURRENCY, archiveOne);
  // Only removals need syncing (and with nothing to archive, incoming/ may not even exist).
  if (files.length > 0) await fsyncDir(dir);
  return tally;
}

/**
 * Files archived at once. Compression runs on the main thread while the other files' reads,
 * sha256, writes and fsyncs run in the thread pool, so CPU and disk overlap instead of adding up
 * (measured: bench/core.ts, archive 500 segments). Each file keeps its own guarantee: its incoming
 * copy is removed only after its archived copy and checksum are durable.
 */
const ARCHIVE_CONCURRENCY = 3;

/** Archive whatever valid WAL sits in incoming/ right now (used while a backup waits for its WAL). */
export async function archiveAllIncoming(ctx: ExecContext): Promise<ArchiveTally> {
  const files = (await listIncoming(ctx.catalog, ctx.server.name))
    .filter((f) => f.kind === 'segment' || f.kind === 'history' || f.kind === 'backup' || f.kind === 'partial')
    .map((f) => f.name);
  return archiveIncoming(ctx, files);
}

export function describeTally(t: ArchiveTally): string {
  const parts = [`${t.archived} archived`];
  if (t.duplicates > 0) parts.push(`${plural(t.duplicates, 'duplicate')} dropped`);
  if (t.quarantined > 0) parts.push(`${t.quarantined} quarantined`);
  if (t.missing > 0) parts.push(`${t.missing} already gone`);
  if (t.inFlight > 0) parts.push(`${t.inFlight} still being written, left for the next run`);
  return parts.join(', ');
}

export async function executeArchiveWal(ctx: ExecContext, action: ArchiveWalAction): Promise<ActionResult> {
  const tally = await archiveIncoming(ctx, action.files);
  // A file quarantined here (another cluster's WAL, a conflicting duplicate) is the same outcome as
  // one the planner quarantined: handled safely, nothing lost, reported by the quarantined-files
  // warning and `pgbk check` until someone looks. Not a failure that holds back retention.
  return { action, outcome: 'done', detail: describeTally(tally) };
}
