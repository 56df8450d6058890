/**
 * Write-back while tar is still extracting, on this host: a head start for flushRestored, not a
 * replacement for it.
 *
 * A restore must be on disk before it is reported done (finalize-pgdata.ts flushRestored fsyncs
 * every restored file at the end). Done only at the end, that flush writes the whole data
 * directory while nothing else runs: 0.9 s of a 2.6 s restore of `pgbench -s 50` here, with the disk
 * idle during the extraction before it (the kernel's own write-back starts only at
 * dirty_background_ratio, 10 % of memory). pgBackRest overlaps the two by fsyncing each file as
 * its processes finish it. This does the same for one tar: tar -v names each member as it starts
 * it, so the member before is complete and is fdatasync'ed on the thread pool; the member being
 * written is fdatasync'ed every FLUSH_EVERY_MS too, so a 1 GiB relation file is flushed while it
 * grows. The final flush then finds almost nothing dirty.
 *
 * unpack.ts stops it when tar exits (stop(), not finish()): what is still queued then is left to
 * flushRestored, which flushes every file in any case.
 *
 * Errors are ignored on purpose: a member that cannot be opened here (a symlink, a name tar printed
 * escaped, a file removed since) is flushed, or reported, by the final flush, which stays the one
 * that decides whether the restore is durable.
 */

import { constants } from 'node:fs';
import { open, statfs } from 'node:fs/promises';
import path from 'node:path';

/** How often the member being extracted is flushed as it grows. */
const FLUSH_EVERY_MS = 200;
/** fdatasyncs at once (libuv's pool has 4 threads; the stored file's reads need one). */
const MAX_IN_FLIGHT = 2;

export class EarlyFlush {
  readonly #dir: string;
  #current: string | undefined;
  #partial = '';
  readonly #queue: string[] = [];
  readonly #busy = new Set<string>();
  #inFlight = 0;
  readonly #timer: NodeJS.Timeout;
  #idle: (() => void) | undefined;
  readonly #flushFile: (file: string) => Promise<void>;

  /** `flushFile`: how one file is flushed (fdatasync; tests record the calls instead). */
  constructor(dir: string, flushFile: (file: string) => Promise<void> = datasync) {
    this.#dir = path.resolve(dir);
    this.#flushFile = flushFile;
    this.#timer = setInterval(() => {
      if (this.#current !== undefined) this.#enqueue(this.#current);
    }, FLUSH_EVERY_MS);
    this.#timer.unref();
  }

  /** tar -v output, as it comes: one member name per line. */
  output(chunk: Buffer): void {
    const lines = (this.#partial + chunk.toString('utf8')).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') continue;
      if (this.#current !== undefined) this.#enqueue(this.#current);
      this.#current = line;
    }
  }

  /** tar has exited: flush the last member and wait for every flush started here. */
  async finish(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#current !== undefined) this.#enqueue(this.#current);
    this.#current = undefined;
    if (this.#inFlight === 0 && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => {
      this.#idle = resolve;
    });
  }

  /** Stop without waiting (the restore failed or was aborted: nothing will be reported durable). */
  stop(): void {
    clearInterval(this.#timer);
    this.#queue.length = 0;
    this.#current = undefined;
  }

  #enqueue(member: string): void {
    // A member already queued or being flushed is flushed once more only after that one ended.
    if (this.#busy.has(member)) return;
    this.#busy.add(member);
    this.#queue.push(member);
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT && this.#queue.length > 0) {
      const member = this.#queue.shift()!;
      this.#inFlight++;
      void this.#flush(member).finally(() => {
        this.#inFlight--;
        this.#busy.delete(member);
        this.#pump();
        if (this.#inFlight === 0 && this.#queue.length === 0) this.#idle?.();
      });
    }
  }

  async #flush(member: string): Promise<void> {
    // Never follow a link out of the target: O_NOFOLLOW, and a name that climbs out is skipped
    // (GNU tar refuses such members anyway).
    const file = path.resolve(this.#dir, member);
    if (file !== this.#dir && !file.startsWith(`${this.#dir}${path.sep}`)) return;
    try {
      await this.#flushFile(file);
    } catch {
      // see the module comment: the final flush decides
    }
  }
}

/** statfs f_type of the file systems whose files live in memory only (linux/magic.h). */
const IN_MEMORY = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/**
 * Whether a head start on write-back can help for files under `dir`: not on tmpfs or ramfs, where
 * there is no disk to write back to (fdatasync returns at once) and the open, fdatasync and close
 * of every member were ~0.05-0.1 s of the main thread and the thread pool in a restore of
 * pgbench -s 50, beside the decompressor and tar on a 2-core machine. When unsure, it helps.
 */
export async function writeBackHelps(dir: string): Promise<boolean> {
  try {
    return !IN_MEMORY.has(Number((await statfs(dir)).type));
  } catch {
    return true;
  }
}

/** fdatasync `file` without following a symlink or waiting on a FIFO. */
async function datasync(file: string): Promise<void> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
