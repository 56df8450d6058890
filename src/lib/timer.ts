/**
 * Timers for user-given durations. Node stores a timeout in a signed 32-bit field: a delay of
 * 2^31 ms (~24.8 days) or more is replaced by 1 ms with only a warning, so `--reconcile-interval 4w`
 * handed to setInterval fires every millisecond. These timers wait in chunks of at most
 * MAX_TIMER_MS, re-measuring the time left on a monotonic clock before each chunk, so any delay
 * a duration can express fires once, no earlier than asked.
 *
 * A leaf module: no imports from the rest of pgbk except its error type.
 */

import { performance } from 'node:perf_hooks';

/** The longest delay Node's setTimeout honours (2^31 - 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the chained timers schedule with; tests substitute a fake clock. */
export interface Scheduler {
  readonly now: () => number;
  readonly setTimeout: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout: (handle: unknown) => void;
  /** Let the process exit while only this timer is pending. */
  readonly unref?: (handle: unknown) => void;
}

const realScheduler: Scheduler = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  unref: (handle) => (handle as NodeJS.Timeout).unref(),
};

export interface LongTimer {
  /** Cancel: the callback will not run (again). Safe to call more than once. */
  clear(): void;
}

export interface TimerOptions {
  /** Do not keep the process alive for this timer alone (Timeout.unref()). */
  readonly unref?: boolean;
  readonly scheduler?: Scheduler;
}

function checkDelay(ms: number, what: string): void {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`${what}: delay ${ms} ms is not a finite number >= 0`);
  }
}

/** Run fn once, ms milliseconds from now (any finite ms, beyond 2^31 included). */
export function setLongTimeout(fn: () => void, ms: number, opts: TimerOptions = {}): LongTimer {
  checkDelay(ms, 'setLongTimeout');
  const s = opts.scheduler ?? realScheduler;
  const due = s.now() + ms;
  let handle: unknown;
  let cleared = false;
  const arm = (): void => {
    const left = due - s.now();
    if (left <= 0) {
      handle = undefined;
      fn();
      return;
    }
    // Math.ceil: a fractional remainder must not round down to an early fire.
    handle = s.setTimeout(arm, Math.min(Math.ceil(left), MAX_TIMER_MS));
    if (opts.unref === true) s.unref?.(handle);
  };
  // The first chunk is armed even for 0 ms, so fn never runs synchronously (like setTimeout).
  handle = s.setTimeout(arm, Math.min(Math.ceil(ms), MAX_TIMER_MS));
  if (opts.unref === true) s.unref?.(handle);
  return {
    clear(): void {
      if (cleared) return;
      cleared = true;
      if (handle !== undefined) s.clearTimeout(handle);
      handle = undefined;
    },
  };
}

/**
 * Run fn every ms milliseconds (ms >= 1). The next period starts when fn is called, as with
 * setInterval; a period longer than 2^31 ms is chained like setLongTimeout.
 */
export function setLongInterval(fn: () => void, ms: number, opts: TimerOptions = {}): LongTimer {
  checkDelay(ms, 'setLongInterval');
  if (ms < 1) throw new RangeError(`setLongInterval: period ${ms} ms is shorter than 1 ms`);
  let current: LongTimer | undefined;
  let cleared = false;
  const next = (): void => {
    current = setLongTimeout(
      () => {
        if (cleared) return;
        next();
        fn();
      },
      ms,
      opts,
    );
  };
  next();
  return {
    clear(): void {
      cleared = true;
      current?.clear();
    },
  };
}

/** Resolve after ms milliseconds (chained beyond 2^31 ms); rejects with the signal's reason on abort. */
export function sleep(ms: number, opts: TimerOptions & { readonly signal?: AbortSignal } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted === true) {
      reject(opts.signal.reason);
      return;
    }
    const onAbort = (): void => {
      timer.clear();
      reject(opts.signal?.reason);
    };
    const timer = setLongTimeout(
      () => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      ms,
      opts,
    );
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `work`'s value, or undefined once `ms` have passed first. The timer is cleared when `work`
 * settles: a bare race with a sleep keeps the process alive for the whole delay after the work is
 * long done (a finished drill kept pgbk running 30 s more).
 */
export async function settleWithin<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let handle: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    handle = setTimeout(resolve, ms, undefined);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(handle);
  }
}
