/**
 * Rebuild one stored root ("data" or "tablespaces/<oid>") of an `ssh` backup kept in a local
 * catalog (a chunk tree in the backup's directory) into an empty directory on this host, durably:
 * every file flushed by the thread that finished it, then every directory. Every stored object is
 * checked against the length and sha256 files.json records as it is written; the first damaged
 * one fails the restore (a CATALOG PgbkError naming it), and the caller empties the target.
 *
 * The main thread walks the tree, makes its directories and symlinks, and hands the files to the
 * threads in batches of jobs as it goes (chunk-tree-plan.ts); the threads take jobs from a shared
 * counter (chunk-tree-worker.ts), and so does the main thread once the walk is done: one thread
 * fewer than copiers is started (session 19: on 2 cores a second thread's start-up, ~45 ms of CPU,
 * competed with the checks, and the main thread sat idle through the copy). The threads start
 * when the backup is opened (stored-layout.ts), so their start-up overlaps the checks. Chunk
 * stores on object storage keep going through restore-tree.ts copyTreeInto.
 */

import { chmod, lchown, mkdir, open, symlink, utimes } from 'node:fs/promises';
import { fsyncDir } from '../lib/atomic.js';
import path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { FileManifest } from '../backup/ssh/incremental.js';
import { restoreThreads } from '../backup/ssh/restore-tree.js';
import { walkStoredRoot, type StoredTree } from '../backup/ssh/stored-tree.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { mapLimited } from '../lib/map-limited.js';
import { zstdDecoder } from '../catalog/zstd.js';
import { failureOf, runJob } from './chunk-tree-job.js';
import {
  ABORTED,
  CLOSED,
  jobsOfFile,
  NEXT_JOB,
  PUBLISHED,
  RANGE_OBJECTS,
  SPLIT_BASE,
  type TreeJob,
  type TreeWork,
  type TreeWorkResult,
} from './chunk-tree-plan.js';

/** Whole-file jobs per batch handed to the threads during the walk. */
const BATCH_JOBS = 32;

/** One list of jobs being fed to the threads (TreeThreads.begin). */
export interface TreeRun {
  publish(jobs: readonly TreeJob[]): void;
  end(): void;
  readonly reports: Promise<PromiseSettledResult<TreeWorkResult>[]>;
}

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

  /** `count` threads: by default one fewer than the restore's copiers, the main thread being the last (once it has walked the tree). */
  static start(count = restoreThreads() - 1): TreeThreads {
    return new TreeThreads(Array.from({ length: count }, () => new Worker(new URL('./chunk-tree-worker.js', import.meta.url))));
  }

  /**
   * Every thread starts on one list of jobs, fed while the caller still walks the tree: the
   * returned publish() hands the threads a batch, end() says there is no more, and reports
   * settles once every thread has stopped. A thread that dies meanwhile sets the abort flag,
   * stopping the others.
   */
  begin(control: SharedArrayBuffer, server: string): TreeRun {
    const counters = new Int32Array(control);
    const wake = (): void => {
      Atomics.notify(counters, PUBLISHED);
    };
    if (this.#dead !== undefined) {
      Atomics.store(counters, ABORTED, 1);
      return { publish: () => {}, end: () => {}, reports: Promise.resolve([{ status: 'rejected', reason: this.#dead }]) };
    }
    const aborted = (): void => {
      Atomics.store(counters, ABORTED, 1);
      wake();
    };
    const channels = this.workers.map(() => new MessageChannel());
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
    this.workers.forEach((w, i) => {
      const port = channels[i]!.port2;
      w.postMessage({ control, port, server } satisfies TreeWork, [port]);
    });
    return {
      publish: (jobs) => {
        if (jobs.length === 0) return;
        for (const c of channels) c.port1.postMessage(jobs);
        Atomics.add(counters, PUBLISHED, jobs.length);
        wake();
      },
      end: () => {
        Atomics.store(counters, CLOSED, 1);
        wake();
      },
      // Every thread has stopped once all have reported: nothing still writes when a failure empties dest.
      reports: Promise.allSettled(reports).finally(() => {
        for (const c of channels) c.port1.close();
      }),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Jobs of `jobs` (every job published) taken from the shared counter on this (the main) thread
 * until none is left or a thread failed; the failure, if this thread's job failed. Between jobs it
 * returns to the event loop, so a signal or a thread's report is handled within one job (~8 MiB).
 */
async function runJobsHere(jobs: readonly TreeJob[], control: Int32Array, server: string): Promise<TreeWorkResult['error']> {
  const codec = zstdDecoder();
  for (;;) {
    if (Atomics.load(control, ABORTED) !== 0) return undefined;
    const i = Atomics.add(control, NEXT_JOB, 1);
    if (i >= jobs.length) return undefined;
    try {
      runJob(codec, jobs[i]!, control, server);
    } catch (err) {
      Atomics.store(control, ABORTED, 1);
      Atomics.notify(control, PUBLISHED);
      return failureOf(err);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
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
    // Split files (ranges both threads write) have one counter each; at most one per recorded file.
    const maxSplits = manifest.files.length;
    const control = new SharedArrayBuffer(4 * (SPLIT_BASE + maxSplits));
    const counters = new Int32Array(control);
    const run = threads.begin(control, server);
    // The threads start on the first files while the tree is still walked (~40 ms for
    // `pgbench -i -s 50`'s 978 entries, during which they used to wait): whole files go in
    // batches, a large file's ranges as soon as it is created.
    let batch: TreeJob[] = [];
    const published: TreeJob[] = [];
    let splits = 0;
    let walkError: unknown;
    try {
      for await (const e of walkStoredRoot(tree, storedAs, manifest, server)) {
        if (Atomics.load(counters, ABORTED) !== 0) break; // a thread failed: its report says why
        const target = path.join(dest, e.rel);
        // One owner for the whole tree, as on the database host (formatVersion 1: as stored).
        const uid = manifest.owner?.uid ?? (e.kind === 'file' ? e.uid : undefined);
        const gid = manifest.owner?.gid ?? (e.kind === 'file' ? e.gid : undefined);
        const owner = asRoot && uid !== undefined && gid !== undefined ? { uid, gid } : undefined;
        if (e.kind === 'file') {
          const file = { target, objects: e.objects, finish: { mode: e.mode, mtimeMs: e.mtimeMs, ...(owner === undefined ? {} : { owner }) } };
          const cut = jobsOfFile(file, splits, splits < maxSplits ? RANGE_OBJECTS : Number.POSITIVE_INFINITY);
          if (cut.ranges === 0) {
            batch.push(...cut.jobs);
            if (batch.length >= BATCH_JOBS) {
              run.publish(batch);
              published.push(...batch);
              batch = [];
            }
            continue;
          }
          // Ranges of a large file are written by whichever thread takes them: the file exists first.
          await (await open(target, 'wx', 0o600)).close();
          counters[SPLIT_BASE + splits] = cut.ranges;
          splits++;
          run.publish(cut.jobs);
          published.push(...cut.jobs);
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
      run.publish(batch);
      published.push(...batch);
    } catch (err) {
      walkError = err;
      Atomics.store(counters, ABORTED, 1);
    } finally {
      run.end();
    }
    // The walk is done: this thread takes jobs too, the threads' start-up and the walk were its share.
    const own = walkError === undefined ? await runJobsHere(published, counters, server) : undefined;
    const results = await run.reports;
    if (walkError !== undefined) throw walkError;
    if (own !== undefined) throw errorOf(own, server);
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
