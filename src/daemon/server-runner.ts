/**
 * One server's reconcile passes, strictly one at a time. Wake-ups coalesce: any number of them
 * while a pass runs (or within the debounce window) cause exactly one more pass, which lists the
 * directories afresh — so a burst of 50 arriving segments costs one or two passes, not 50.
 */

export interface RunnerOptions {
  /** Let a burst of events settle before starting a pass. */
  readonly debounceMs: number;
  /** After a pass threw (lock held by a manual apply, server down), try again this much later. */
  readonly retryMs: number;
  readonly pass: () => Promise<void>;
  readonly onError: (err: unknown) => void;
}

export class ServerRunner {
  private pending = false;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: RunnerOptions) {}

  wake(): void {
    if (this.stopped) return;
    this.pending = true;
    if (this.current === undefined && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.current = this.loop().finally(() => {
          this.current = undefined;
          // A wake-up that raced with the end of the loop.
          if (this.pending && !this.stopped) this.wake();
        });
      }, this.opts.debounceMs);
    }
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  private async loop(): Promise<void> {
    while (this.pending && !this.stopped) {
      this.pending = false;
      try {
        await this.opts.pass();
      } catch (err) {
        this.opts.onError(err);
        if (this.retryTimer === undefined && !this.stopped) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.wake();
          }, this.opts.retryMs);
        }
      }
    }
  }

  /** No new passes; resolves when the pass in progress (if any) has finished. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
    return this.current ?? Promise.resolve();
  }
}
