/**
 * `cksum < FILE` for many files from one long-lived shell, for the prefetch worker.
 *
 * The spool's sidecar must be exactly what restore_command's fast path computes (the cksum
 * program's CRC-32 and length, spool.ts), so the worker runs the same program. Spawning it from
 * Node once per segment measured ~36 ms wall and ~16 ms of the worker's own CPU per 16 MiB segment
 * on this 2-core host (forking a Node process is the cost, not the CRC), CPU that PostgreSQL's
 * startup process then lacks during replay. Here one `sh` reads file names from a pipe and runs
 * cksum for each: a fork of a small shell per file, answers in request order.
 *
 * Any failure (the shell gone, a name it cannot take, cksum failing) rejects that request with the
 * reason; the caller publishes nothing then, so this can only cost speed, never a wrong sidecar.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { cksumOf } from './spool.js';

/** A line per request: cksum's output, or `!` when it failed (its stderr is dropped). */
const LOOP = 'while IFS= read -r f; do cksum < "$f" 2>/dev/null || echo "!"; done';

export interface CksumService {
  /** `cksum < file` with the trailing newline dropped ("CRC LENGTH"), as the fast path sees it. */
  sum(file: string): Promise<string>;
  /** End the shell (it exits once its input closes); until then it keeps the process alive. */
  close(): void;
}

interface Waiter {
  readonly file: string;
  resolve(line: string): void;
  reject(err: Error): void;
}

export function startCksumService(): CksumService {
  let child: ChildProcessWithoutNullStreams | undefined;
  let waiters: Waiter[] = [];
  let buffered = '';

  const failAll = (why: string): void => {
    const pending = waiters;
    waiters = [];
    child = undefined;
    buffered = '';
    for (const w of pending) w.reject(new Error(`cksum ${w.file}: ${why}`));
  };

  const start = (): ChildProcessWithoutNullStreams => {
    const c = spawn('sh', ['-c', LOOP], { stdio: ['pipe', 'pipe', 'pipe'] });
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const w = waiters.shift();
        if (w === undefined) continue;
        if (/^\d+ \d+$/.test(line)) w.resolve(line);
        else w.reject(new Error(`cksum ${w.file}: ${line === '!' ? 'failed' : `unexpected output ${JSON.stringify(line)}`}`));
      }
    });
    c.stderr.resume();
    c.stdin.on('error', () => {
      // the shell went away: its 'close' rejects what is waiting
    });
    c.once('error', (err) => {
      if (child === c) failAll(err.message);
    });
    c.once('close', (code, signal) => {
      if (child === c) failAll(`the checksum shell exited (${signal ?? code})`);
    });
    return c;
  };

  return {
    sum(file: string): Promise<string> {
      // A name the line protocol cannot carry goes to a cksum of its own.
      if (file.includes('\n')) return cksumOf(file);
      return new Promise<string>((resolve, reject) => {
        child ??= start();
        waiters.push({ file, resolve, reject });
        child.stdin.write(`${file}\n`);
      });
    },
    close(): void {
      const c = child;
      child = undefined;
      c?.stdin.end();
      failAll('closed');
    },
  };
}
