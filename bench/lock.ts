/**
 * The machine-wide lock heavy work shares (/tmp/pgbk-heavy.lock, PGBK_BENCH_LOCK to change it, ''
 * for none): a benchmark holds it for one round at a time and releases it between rounds, so the
 * other sessions' integration tests get their turn and do not load the machine during a timed run.
 *
 * Held by a `flock FILE sh -c 'echo locked; exec cat'` child: it prints once the lock is ours and
 * keeps it until its stdin closes (release), or until this process dies (the pipe closes then too).
 */

import { spawn } from 'node:child_process';

const LOCK = process.env['PGBK_BENCH_LOCK'] ?? '/tmp/pgbk-heavy.lock';

/** Wait for the lock; resolves to its release function. */
export function acquireHeavyLock(): Promise<() => Promise<void>> {
  if (LOCK === '') return Promise.resolve(async () => undefined);
  const child = spawn('flock', [LOCK, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.setEncoding('utf8').once('data', () => {
      resolve(async () => {
        child.stdin.end();
        await closed;
      });
    });
    child.once('close', (code) => reject(new Error(`flock ${LOCK} exited ${String(code)} before it held the lock`)));
  });
}

/** Run `fn` holding the lock (one round). */
export async function withHeavyLock<T>(fn: () => Promise<T>): Promise<T> {
  const release = await acquireHeavyLock();
  try {
    return await fn();
  } finally {
    await release();
  }
}
