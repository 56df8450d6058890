import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable, toPgbkError } from '../errors.js';

/**
 * Run `fn`, retrying a bounded number of times when it fails with a retryable error (network, lock
 * contention: DESIGN.md §1); anything else, or the last failure, is thrown as is. The delay doubles.
 */
export async function withRetry<T>(fn: () => Promise<T>, opts: { attempts?: number; delayMs?: number; log?: (line: string) => void } = {}): Promise<T> {
  const attempts = opts.attempts ?? 3;
  let delay = opts.delayMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = toPgbkError(err);
      if (attempt >= attempts || !isRetryable(e.code)) throw err;
      opts.log?.(`${e.server !== undefined ? `${e.server}: ` : ''}${e.message}; retrying in ${delay / 1000}s (attempt ${attempt + 1} of ${attempts})`);
      await sleep(delay);
      delay *= 2;
    }
  }
}
