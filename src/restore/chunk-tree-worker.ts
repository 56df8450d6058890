/**
 * One thread of a local `ssh` restore (chunk-tree-copy.ts): takes jobs (chunk-tree-plan.ts) from a
 * counter shared with the other threads (and the main thread, once it has walked the tree) until
 * none is left, and runs each (chunk-tree-job.ts). Synchronous calls throughout: this thread has nothing else to do meanwhile, and libuv's pool
 * (shared by the process) is not involved.
 *
 * For each list it posts one message when it stops: every job it took was done, or the first
 * failure (then the shared abort flag stops the other threads at their next job).
 */

import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { zstdDecoder } from '../catalog/zstd.js';
import { failureOf, runJob } from './chunk-tree-job.js';
import { ABORTED, CLOSED, NEXT_JOB, PUBLISHED, type TreeJob, type TreeWork, type TreeWorkResult } from './chunk-tree-plan.js';

const port = parentPort;
if (port === null) throw new Error('chunk-tree-worker runs as a worker thread');

/** How long a thread waiting for jobs sleeps at most before it looks at the abort flag again. */
const WAIT_MS = 20;

/**
 * Job i of the list, once the main thread has posted it (it walks the tree while the threads
 * work); undefined when the list ended before i, or on abort. Batches are read from the port
 * synchronously: this thread does not return to its event loop before the list ends.
 */
function jobAt(i: number, jobs: TreeJob[], w: TreeWork, control: Int32Array): TreeJob | undefined {
  for (;;) {
    if (i < jobs.length) return jobs[i];
    const batch = receiveMessageOnPort(w.port);
    if (batch !== undefined) {
      for (const j of batch.message as TreeJob[]) jobs.push(j);
      continue;
    }
    if (Atomics.load(control, ABORTED) !== 0) return undefined;
    // CLOSED before PUBLISHED: once closed, PUBLISHED is final.
    const closed = Atomics.load(control, CLOSED) !== 0;
    const published = Atomics.load(control, PUBLISHED);
    if (closed && i >= published) return undefined;
    // Posted before it was counted: a counted batch not yet readable is a moment away.
    Atomics.wait(control, PUBLISHED, published, i < published ? 1 : WAIT_MS);
  }
}

async function work(w: TreeWork): Promise<TreeWorkResult> {
  const control = new Int32Array(w.control);
  const jobs: TreeJob[] = [];
  let done = 0;
  try {
    const codec = zstdDecoder();
    for (;;) {
      if (Atomics.load(control, ABORTED) !== 0) break;
      const job = jobAt(Atomics.add(control, NEXT_JOB, 1), jobs, w, control);
      if (job === undefined) break;
      runJob(codec, job, control, w.server);
      done++;
    }
    return { jobs: done };
  } catch (err) {
    Atomics.store(control, ABORTED, 1);
    Atomics.notify(control, PUBLISHED);
    return { jobs: done, error: failureOf(err) };
  } finally {
    w.port.close();
  }
}

// The decoders are loaded while the main thread still walks the stored tree.
zstdDecoder().warm();

// One report per stored root handed out (the data directory, then each tablespace).
port.on('message', (w: TreeWork) => {
  void work(w).then((r) => port.postMessage(r satisfies TreeWorkResult));
});
