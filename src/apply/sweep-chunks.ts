/**
 * The executor of 'sweep-chunks' (plan/chunk-sweep.ts has the rule): under the server's lock, after
 * this run's deletions, note the time, list the stored chunks, read the file list of every backup
 * record still in the catalog (retained ones, in-use ones — retention never deletes those — and
 * ones in progress), and delete the chunks `chunksToSweep` names. Nothing is deleted when a DONE
 * backup's file list cannot be read.
 */

import { readBackups } from '../catalog/index.js';
import { ChunkStore } from '../catalog/chunk-store.js';
import { repositoryKindOf, repositoryOf } from '../catalog/open.js';
import { storedSource } from '../catalog/stored-source.js';
import { readFileList } from '../backup/ssh/stored-file-list.js';
import { plural } from '../lib/plural.js';
import type { SweepChunksAction } from '../model/types.js';
import { CLOCK_MARGIN_MS, chunksToSweep, type ListedChunk, type RetainedBackup } from '../plan/chunk-sweep.js';
import type { ActionResult, ExecContext } from './context.js';

export async function executeSweepChunks(ctx: ExecContext, action: SweepChunksAction, clockMarginMs = CLOCK_MARGIN_MS): Promise<ActionResult> {
  const server = ctx.server.name;
  if (repositoryKindOf(ctx.catalog) === 'posix') return { action, outcome: 'skipped', detail: 'a local catalog keeps no content-addressed chunks' };
  const store = new ChunkStore(await repositoryOf(ctx.catalog), server);
  const listingStartedAt = new Date();
  const listed: ListedChunk[] = [];
  for await (const c of store.list()) listed.push({ hash: c.hash, mtime: c.mtime });
  const retained: RetainedBackup[] = [];
  for (const b of await readBackups(ctx.catalog, server)) {
    if (b.method !== 'ssh') continue;
    let refs: RetainedBackup['refs'];
    try {
      const list = await readFileList(await storedSource(ctx.catalog, server, b.id));
      refs = list.files.flatMap((f) => f.hashes ?? []);
    } catch {
      // A finished backup must have its list; one in progress (or failed) has none yet.
      refs = b.status === 'DONE' ? 'unreadable' : 'in-progress';
    }
    retained.push({ id: b.id, refs, beginTime: b.beginTime });
  }
  const d = chunksToSweep({ listed, retained, listingStartedAt, clockMarginMs });
  if (!d.sweep) return { action, outcome: 'skipped', detail: d.reason };
  await store.delete(d.remove);
  ctx.log(`${server}: ${plural(d.remove.length, 'chunk')} deleted: ${d.reason}`);
  return {
    action,
    outcome: 'done',
    detail: `${plural(d.remove.length, 'chunk')} deleted, ${d.keptReferenced} referenced and ${d.keptRecent} recent kept`,
  };
}
