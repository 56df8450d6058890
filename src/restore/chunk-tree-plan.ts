/**
 * The work of rebuilding one stored root of a local `ssh` backup (chunk-tree-copy.ts), cut into
 * jobs that the restore's threads (chunk-tree-worker.ts) and, once it has walked the tree, the
 * main thread take one after another from a shared counter, with nothing sent back and forth per
 * file.
 *
 * Why this shape (bench/ssh-peers.ts, `pgbench -i -s 50`: 978 files, two of them 90 % of the
 * bytes): handing out one chunk at a time from the main thread, each file opened, chmod'ed,
 * flushed, closed, timed and chowned there with a round trip through libuv's pool per call, left
 * both threads idle for ~0.35 s of a 1.2 s unpack while the hundreds of small catalog files went
 * by. Here a thread owns a small file from open to fdatasync; a large file is cut into ranges that
 * both threads write at once, the last range to be flushed finishing the file. Jobs are handed
 * out in the order the tree is walked, while it is walked (session 19: the threads had waited
 * ~40 ms for the walk); its end (global/, pg_*) is small files, so the copiers end together.
 */

import type { StoredObject } from '../backup/ssh/stored-tree.js';
import type { MessagePort } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';

/** Chunks per range of a large file: ~8 MiB of work, so the threads share a large file. */
export const RANGE_OBJECTS = 8;

/** What a file gets once all of its bytes are written, before it is flushed. */
export interface FileFinish {
  readonly mode: number;
  readonly mtimeMs: number;
  /** Set only when restoring as root. */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

export interface TreeJob {
  readonly target: string;
  /** Where objects[0] goes in the target file. */
  readonly position: number;
  readonly objects: readonly StoredObject[];
  /**
   * undefined: a whole file, created (exclusively) and finished by this job. Otherwise the index
   * of the large file this range belongs to: the file exists already, and the job that flushes
   * its last outstanding range finishes it.
   */
  readonly split?: number;
  readonly finish: FileFinish;
}

export interface PlannedFile {
  readonly target: string;
  readonly objects: readonly StoredObject[];
  readonly finish: FileFinish;
}

/** The jobs of one file as it is walked: itself whole, or its ranges when it has more than `rangeObjects` objects (split file number `split`). */
export function jobsOfFile(f: PlannedFile, split: number, rangeObjects = RANGE_OBJECTS): { readonly jobs: TreeJob[]; readonly ranges: number } {
  if (f.objects.length <= rangeObjects) return { jobs: [{ target: f.target, position: 0, objects: f.objects, finish: f.finish }], ranges: 0 };
  const jobs: TreeJob[] = [];
  let position = 0;
  for (let i = 0; i < f.objects.length; i += rangeObjects) {
    const objects = f.objects.slice(i, i + rangeObjects);
    jobs.push({ target: f.target, position, objects, split, finish: f.finish });
    position += objects.reduce((a, o) => a + o.length, 0);
  }
  return { jobs, ranges: jobs.length };
}

/**
 * Int32 slots of the control buffer the main thread and the threads (chunk-tree-worker.ts) share.
 * Jobs are handed out while the main thread still walks the tree: it posts each batch to every
 * thread's port, then adds its length to PUBLISHED; CLOSED is set once the walk is done.
 */
export const NEXT_JOB = 0;
export const ABORTED = 1;
/** Jobs posted so far (threads wait on this slot for more). */
export const PUBLISHED = 2;
/** 1 once every job has been posted. */
export const CLOSED = 3;
/** Slot of split file i: its ranges not yet flushed. */
export const SPLIT_BASE = 4;

export interface TreeWork {
  readonly control: SharedArrayBuffer;
  /** Where the batches of jobs (TreeJob[]) arrive, read synchronously by the thread. */
  readonly port: MessagePort;
  readonly server: string;
}

export interface TreeWorkResult {
  readonly jobs: number;
  /** The first failure: PgbkError's code (or the errno code of a system error), message and path. */
  readonly error?: { readonly message: string; readonly pgbkCode?: ErrorCode; readonly errno?: string; readonly path?: string };
}
