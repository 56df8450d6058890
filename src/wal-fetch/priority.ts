/**
 * The CPU priority of wal-fetch's background workers (the local prefetch worker, the worker that
 * fetches over SSH): below PostgreSQL's.
 */

import os from 'node:os';

/** The workers' nice value. */
const WORKER_NICE = 10;

/**
 * Run at a lower CPU priority than PostgreSQL: on a host with few cores the worker's
 * decompression competed with the startup process it feeds (replay waits for CPU, not for WAL —
 * the worker needs ~22 ms per segment and stays `count` segments ahead). A nice value only lends
 * the worker the idle CPU; it never stops it. Children inherit it.
 */
export function yieldToRecovery(): void {
  try {
    // Never raise it: a worker started under a nicer parent stays there.
    if (os.getPriority() < WORKER_NICE) os.setPriority(WORKER_NICE);
  } catch {
    // not allowed here: full priority only costs replay speed
  }
}
