/**
 * The work of rebuilding one stored root of a local `ssh` backup (chunk-tree-copy.ts), cut into
 * jobs that the restore's threads take one after another from a shared counter
 * (chunk-tree-worker.ts), with nothing sent back and forth per file.
 *
 * Why this shape (bench/ssh-peers.ts, `pgbench -i -s 50`: 978 files, two of them 90 % of the
 * bytes): handing out one chunk at a time from the main thread, each file opened, chmod'ed,
 * flushed, closed, timed and chowned there with a round trip through libuv's pool per call, left
 * both threads idle for ~0.35 s of a 1.2 s unpack while the hundreds of small catalog files went
 * by. Here a thread owns a small file from open to fdatasync; a large file is cut into ranges that
 * both threads write at once, the last range to be flushed finishing the file. Ranges go first,
 * then the small files, so the threads end together (longest jobs first).
 */

import type { StoredObject } from '../backup/ssh/stored-tree.js';
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

export interface TreePlan {
  readonly jobs: readonly TreeJob[];
  /** Large files to create before the threads start, and how many ranges each has. */
  readonly splitFiles: readonly { readonly target: string; readonly ranges: number }[];
}

export interface PlannedFile {
  readonly target: string;
  readonly objects: readonly StoredObject[];
  readonly finish: FileFinish;
}

/** Jobs for `files` (in the order they were walked): ranges of the large ones first, then the rest. */
export function planTreeJobs(files: readonly PlannedFile[], rangeObjects = RANGE_OBJECTS): TreePlan {
  const ranges: TreeJob[] = [];
  const whole: TreeJob[] = [];
  const splitFiles: { target: string; ranges: number }[] = [];
  for (const f of files) {
    if (f.objects.length <= rangeObjects) {
      whole.push({ target: f.target, position: 0, objects: f.objects, finish: f.finish });
      continue;
    }
    const split = splitFiles.length;
    let position = 0;
    let count = 0;
    for (let i = 0; i < f.objects.length; i += rangeObjects) {
      const objects = f.objects.slice(i, i + rangeObjects);
      ranges.push({ target: f.target, position, objects, split, finish: f.finish });
      position += objects.reduce((a, o) => a + o.length, 0);
      count++;
    }
    splitFiles.push({ target: f.target, ranges: count });
  }
  return { jobs: [...ranges, ...whole], splitFiles };
}

/** Int32 slots of the control buffer the main thread and the threads (chunk-tree-worker.ts) share. */
export const NEXT_JOB = 0;
export const ABORTED = 1;
/** Slot of split file i: its ranges not yet flushed. */
export const SPLIT_BASE = 2;

export interface TreeWork {
  readonly jobs: readonly TreeJob[];
  readonly control: SharedArrayBuffer;
  readonly server: string;
}

export interface TreeWorkResult {
  readonly jobs: number;
  /** The first failure: PgbkError's code (or the errno code of a system error), message and path. */
  readonly error?: { readonly message: string; readonly pgbkCode?: ErrorCode; readonly errno?: string; readonly path?: string };
}
