/**
 * Rebuild one stored root ("data" or "tablespaces/<oid>") of an `ssh` backup kept in a local
 * catalog (a chunk tree in the backup's directory) into an empty directory on this host, durably:
 * every file flushed by the thread that finished it, then every directory. Every stored object is
 * checked against the length and sha256 files.json records as it is written; the first damaged
 * one fails the restore (a CATALOG PgbkError naming it), and the caller empties the target.
 *
 * The main thread walks the tree, makes its directories and symlinks, and hands the files to the
 * threads as one list of jobs (chunk-tree-plan.ts); the threads take jobs from a shared counter
 * (chunk-tree-worker.ts). The threads start when the backup is opened (stored-layout.ts), so their
 * start-up overlaps the checks and the walk. Chunk stores on object storage keep going through restore-tree.ts copyTreeInto.
 */

import { chmod, lchown, mkdir, open, symlink, utimes } from 'node:fs/promises';
import { fsyncDir } from '../lib/atomic.js';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FileManifest } from '../backup/ssh/incremental.js';
import { restoreThreads } from '../backup/ssh/restore-tree.js';
import { walkStoredRoot, type StoredTree } from '../backup/ssh/stored-tree.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { mapLimited } from '../lib/map-limited.js';
import { ABORTED, NEXT_JOB, planTreeJobs, type PlannedFile, SPLIT_BASE, type TreeWork, type TreeWorkResult } from './chunk-tree-plan.js';

/** Whether copyChunkTree can rebuild this tree: a local one whose objects are all files. */
export function isLocalChunkTree(tree: StoredTree): boolean {
  return tree.dir !== undefined && tree.chunks === undefined;
}

/**
 * The restore's threads (chunk-tree-worker.ts), started before they are needed: a restore starts
 * them when it opens the backup, so that their start-up (~0.1 s) overlaps the checks before the
 * copy. Each run() hands every thread the same list of jobs and settles once all have stopped.
 */
export class TreeThreads {
  #dead: Error | undefined;

  private constructor(private readonly workers: readonly Worker[]) {
    for (const w of workers) {
      // A thread that dies between runs fails the next run at once (it would never report); an
      // 'error' without a listener would end the process.
      w.on('error', (e: Error) => {
        this.#dead ??= e;
      });
      w.on('exit', (code) => {
        this.#dead ??= new Error(`restore thread exited (${code})`);
      });
    }
  }

  static start(count = restoreThreads()): TreeThreads {
    return new TreeThreads(Array.from({ length: count }, () => new Worker(new URL('./chunk-tree-worker.js', import.meta.url))));
  }

  /** Every thread's report on `work`; a thread that dies meanwhile sets the abort flag, stopping the others. */
  async run(work: TreeWork): Promise<PromiseSettledResult<TreeWorkResult>[]> {
    if (this.#dead !== undefined) return [{ status: 'rejected', reason: this.#dead }];
    const aborted = (): void => {
      Atomics.store(new Int32Array(work.control), ABORTED, 1);
    };
    const reports = this.workers.map(
      (w) =>
        new Promise<TreeWorkResult>((resolve, reject) => {
          const done = (): void => {
            w.off('message', onMessage);
            w.off('error', onError);
            w.off('exit', onExit);
          };
          const onMessage = (r: TreeWorkResult): void => {
            done();
            resolve(r);
          };
          const onError = (e: Error): void => {
            done();
            aborted();
            reject(e);
          };
          const onExit = (code: number): void => {
            done();
            aborted();
            reject(new Error(`restore thread exited (${code}) before reporting`));
          };
          w.on('message', onMessage);
          w.on('error', onError);
          w.on('exit', onExit);
        }),
    );
    for (const w of this.workers) w.postMessage(work);
    // Every thread has stopped once all have reported: nothing still writes when a failure empties dest.
    return Promise.allSettled(reports);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function errorOf(e: NonNullable<TreeWorkResult['error']>, server: string): Error {
  if (e.pgbkCode !== undefined) return new PgbkError(e.pgbkCode, e.message, { server, path: e.path });
  const err = new Error(e.message) as NodeJS.ErrnoException;
  if (e.errno !== undefined) err.code = e.errno;
  if (e.path !== undefined) err.path = e.path;
  return err;
}

/**
 * Rebuild stored root `storedAs` of the local backup `tree` (its files.json as checked: `manifest`)
 * into dest (exists, empty), on `started` threads (left running) or on threads of its own.
 */
export async function copyChunkTree(
  tree: StoredTree,
  manifest: FileManifest,
  storedAs: string,
  dest: string,
  server: string,
  started?: TreeThreads,
): Promise<void> {
  const threads = started ?? TreeThreads.start();
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
    const results = await threads.run({ jobs: plan.jobs, control, server });
    const failed = results.find((r) => r.status === 'rejected' || r.value.error !== undefined);
    if (failed !== undefined) {
      if (failed.status === 'rejected') throw failed.reason;
      throw errorOf(failed.value.error!, server);
    }
    // Directory times last: creating their entries moved them. Then every directory flushed.
    for (const d of [...dirs].reverse()) await utimes(d.file, d.mtimeMs / 1000, d.mtimeMs / 1000);
    await mapLimited([dest, ...dirs.map((d) => d.file)], 16, fsyncDir);
  } catch (err) {
    throw toPgbkError(err, { server, path: dest });
  } finally {
    if (started === undefined) await threads.close();
  }
}
