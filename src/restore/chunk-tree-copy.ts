/**
 * Rebuild one stored root ("data" or "tablespaces/<oid>") of an `ssh` backup kept in a local
 * catalog (a chunk tree in the backup's directory) into an empty directory on this host, durably:
 * every file flushed by the thread that finished it, then every directory. Every stored object is
 * checked against the length and sha256 files.json records as it is written; the first damaged
 * one fails the restore (a CATALOG PgbkError naming it), and the caller empties the target.
 *
 * The main thread walks the tree, makes its directories and symlinks, and hands the files to the
 * threads as one list of jobs (chunk-tree-plan.ts); the threads take jobs from a shared counter
 * (chunk-tree-worker.ts). The threads start before the walk, so their start-up overlaps it.
 * Chunk stores on object storage keep going through restore-tree.ts copyTreeInto.
 */

import { chmod, lchown, mkdir, open, symlink, utimes } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FileManifest } from '../backup/ssh/incremental.js';
import { walkStoredRoot, type StoredTree } from '../backup/ssh/stored-tree.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { mapLimited } from '../lib/map-limited.js';
import { ABORTED, NEXT_JOB, planTreeJobs, type PlannedFile, SPLIT_BASE, type TreeWork, type TreeWorkResult } from './chunk-tree-plan.js';

/** Threads of a restore: every core, up to 4 (past that the disk is the limit); PGBK_RESTORE_THREADS overrides. */
export function restoreThreads(): number {
  const env = Number(process.env['PGBK_RESTORE_THREADS']);
  return Number.isInteger(env) && env >= 1 && env <= 64 ? env : Math.max(1, Math.min(4, availableParallelism()));
}

/** Whether copyChunkTree can rebuild this tree: a local one whose objects are all files. */
export function isLocalChunkTree(tree: StoredTree): boolean {
  return tree.dir !== undefined && tree.chunks === undefined;
}

interface Thread {
  readonly worker: Worker;
  /** Settles when the thread reports (or dies). */
  readonly result: Promise<TreeWorkResult>;
}

function startThread(): Thread {
  const worker = new Worker(new URL('./chunk-tree-worker.js', import.meta.url));
  const result = new Promise<TreeWorkResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`restore thread exited (${code}) before reporting`)));
  });
  result.catch(() => undefined); // awaited once the jobs are handed out (or the walk failed)
  return { worker, result };
}

function errorOf(e: NonNullable<TreeWorkResult['error']>, server: string): Error {
  if (e.pgbkCode !== undefined) return new PgbkError(e.pgbkCode, e.message, { server, path: e.path });
  const err = new Error(e.message) as NodeJS.ErrnoException;
  if (e.errno !== undefined) err.code = e.errno;
  if (e.path !== undefined) err.path = e.path;
  return err;
}

async function fsyncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Rebuild stored root `storedAs` of the local backup `tree` (its files.json as checked: `manifest`) into dest (exists, empty). */
export async function copyChunkTree(
  tree: StoredTree,
  manifest: FileManifest,
  storedAs: string,
  dest: string,
  server: string,
  threads = restoreThreads(),
): Promise<void> {
  const pool = Array.from({ length: threads }, startThread);
  try {
    const asRoot = process.getuid?.() === 0;
    const dirs: { file: string; mtimeMs: number }[] = [];
    const files: PlannedFile[] = [];
    for await (const e of walkStoredRoot(tree, storedAs, manifest, server)) {
      const target = path.join(dest, e.rel);
      // One owner for the whole tree, as on the database host (formatVersion 1: as stored).
      const uid = manifest.owner?.uid ?? (e.kind === 'file' ? e.uid : undefined);
      const gid = manifest.owner?.gid ?? (e.kind === 'file' ? e.gid : undefined);
      const owner = asRoot && uid !== undefined && gid !== undefined ? { uid, gid } : undefined;
      if (e.kind === 'file') {
        files.push({ target, objects: e.objects, finish: { mode: e.mode, mtimeMs: e.mtimeMs, ...(owner === undefined ? {} : { owner }) } });
        continue;
      }
      if (e.kind === 'dir') {
        await mkdir(target, { mode: e.mode });
        await chmod(target, e.mode);
        dirs.push({ file: target, mtimeMs: e.mtimeMs });
      } else {
        await symlink(e.target, target);
      }
      if (owner !== undefined) await lchown(target, owner.uid, owner.gid);
    }
    const plan = planTreeJobs(files);
    // Ranges of a large file are written by whichever thread takes them: the file exists first.
    for (const s of plan.splitFiles) await (await open(s.target, 'wx', 0o600)).close();
    const control = new SharedArrayBuffer(4 * (SPLIT_BASE + plan.splitFiles.length));
    const counters = new Int32Array(control);
    counters[NEXT_JOB] = 0;
    counters[ABORTED] = 0;
    plan.splitFiles.forEach((s, i) => {
      counters[SPLIT_BASE + i] = s.ranges;
    });
    for (const t of pool) {
      // A thread that dies mid-job stops the others too (its file would stay incomplete anyway).
      t.result.catch(() => Atomics.store(counters, ABORTED, 1));
      t.worker.postMessage({ jobs: plan.jobs, control, server } satisfies TreeWork);
    }
    // Every thread has stopped once all have reported: nothing still writes when a failure empties dest.
    const results = await Promise.allSettled(pool.map((t) => t.result));
    const failed = results.find((r) => r.status === 'rejected' || r.value.error !== undefined);
    if (failed !== undefined) {
      if (failed.status === 'rejected') throw failed.reason;
      throw errorOf(failed.value.error!, server);
    }
    // Directory times last: creating their entries moved them. Then every directory flushed.
    for (const d of [...dirs].reverse()) await utimes(d.file, d.mtimeMs / 1000, d.mtimeMs / 1000);
    await mapLimited([dest, ...dirs.map((d) => d.file)], 16, fsyncDirectory);
  } catch (err) {
    throw toPgbkError(err, { server, path: dest });
  } finally {
    // Threads that got no jobs (the walk failed) still wait for them; the others have all reported.
    await Promise.all(pool.map((t) => t.worker.terminate()));
  }
}
