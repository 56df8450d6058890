/** Small polling and assertion helpers shared by the integration tests. */
import { PgbkError } from '../../src/errors.js';

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly stepMs?: number;
  /** Extra text for the timeout message (e.g. the daemon's log tail). */
  readonly context?: () => string;
}

/** Poll `fn` until it returns something other than undefined; fail naming `what` after the timeout. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, opts: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${opts.context ? `\n${opts.context()}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.stepMs ?? 50));
  }
}

/** The PgbkError a promise rejects with; anything else (or success) fails the test. */
export async function pgbkErrorOf(p: Promise<unknown>): Promise<PgbkError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof PgbkError) return err;
    throw err;
  }
  throw new Error('expected a PgbkError');
}
