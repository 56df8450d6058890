import type { Readable } from 'node:stream';

/** Read lines and exact byte counts from a stream (the framing of wal-receive's stdin/stdout). */
export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private waiter: (() => void) | undefined;

  constructor(stream: Readable) {
    stream.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      this.wake();
    });
    stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
    stream.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private flat(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private take(n: number): Buffer {
    const all = this.flat();
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  private wait(): Promise<void> {
    return new Promise((r) => (this.waiter = r));
  }

  /** The next line without its "\n"; undefined at end of stream. */
  async line(): Promise<string | undefined> {
    for (;;) {
      const i = this.flat().indexOf(0x0a);
      if (i >= 0)
        return this.take(i + 1)
          .subarray(0, i)
          .toString('utf8');
      if (this.ended) return undefined;
      await this.wait();
    }
  }

  /** Exactly n bytes; undefined if the stream ends first. */
  async exact(n: number): Promise<Buffer | undefined> {
    for (;;) {
      // No copy: take() returns a slice of a buffer nothing else writes to (a stream chunk or a
      // fresh concat), and 16 MiB copies per segment are what this path must avoid.
      if (this.length >= n) return this.take(n);
      if (this.ended) return undefined;
      await this.wait();
    }
  }
}
