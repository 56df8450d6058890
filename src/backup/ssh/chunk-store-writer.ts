/**
 * The `ssh` method's chunks into a content-addressed chunk store (object storage; see
 * catalog/chunk-store.ts and files.json formatVersion 4 in incremental.ts). The ChunkSink contract
 * of chunk-writer.ts, stored differently: a new chunk is one zstd frame at its hash (put-if-absent:
 * a chunk some backup already stored costs one conditional request and no bytes), an unchanged one
 * is a reference — its hash in files.json — and nothing is copied or linked.
 *
 * Hashes this backup may take as stored without asking the store: the previous backup's (it is DONE
 * and retained, and the chunk sweep, which alone deletes chunks, runs under the server's lock this
 * backup holds) and the ones this backup already stored.
 */

import type { ChunkStore } from '../../catalog/chunk-store.js';
import { zstdCodec, type ZstdCodec } from '../../catalog/zstd.js';
import type { ChunkSink, ChunkTotals } from './chunk-writer.js';
import { chunkLength, type FetchItem, type ManifestFile } from './incremental.js';

/** Uploads in flight at once: each is one small PUT (a compressed 1 MiB chunk), bound by round trips. */
const PUTS_IN_FLIGHT = 16;

export class ChunkStoreWriter implements ChunkSink {
  readonly totals: ChunkTotals = { copiedBytes: 0, storedBytes: 0, reusedBytes: 0 };
  readonly written: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly known: Set<string>;
  private failure: unknown;
  private item: FetchItem | undefined;
  private hashes: string[] = [];
  private size = 0;
  private codec: ZstdCodec | undefined;

  /** known: hashes of chunks already stored and kept for this backup (the previous backup's). */
  constructor(
    private readonly store: ChunkStore,
    private readonly chunkSize: number,
    readonly zstdLevel: number,
    known: Iterable<string>,
  ) {
    this.known = new Set(known);
  }

  async init(): Promise<void> {
    this.codec = await zstdCodec();
  }

  begin(item: FetchItem): void {
    if (this.item !== undefined) throw new Error(`internal: ${this.item.file.path} not ended`);
    this.item = item;
    this.hashes = [];
    this.size = 0;
  }

  private current(): FetchItem {
    if (this.item === undefined) throw new Error('internal: chunk outside a file');
    return this.item;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Store one frame unless its hash is known; waits only while PUTS_IN_FLIGHT uploads run. */
  private async put(hash: string, frame: () => Buffer, length: number): Promise<void> {
    this.throwIfFailed();
    this.hashes.push(hash);
    this.size += length;
    this.totals.copiedBytes += length;
    if (this.known.has(hash)) return;
    this.known.add(hash); // a second copy in this backup (zero pages…) is not uploaded again
    const bytes = frame();
    const op = this.store.putFrame(hash, bytes).then((r) => {
      this.totals.storedBytes += r.storedBytes;
      if (r.outcome === 'created') this.written.push(hash);
    });
    const tracked: Promise<void> = op.then(
      () => undefined,
      (err: unknown) => {
        this.known.delete(hash); // not stored: nothing may refer to it as stored
        this.failure ??= err;
      },
    );
    this.inFlight.add(tracked);
    void tracked.then(() => this.inFlight.delete(tracked));
    if (this.inFlight.size >= PUTS_IN_FLIGHT) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  data(hash: string, data: Buffer): Promise<void> {
    if (this.codec === undefined) throw new Error('internal: ChunkStoreWriter.init() not awaited');
    const codec = this.codec;
    return this.put(hash, () => codec.compress(data, this.zstdLevel), data.length);
  }

  compressed(hash: string, frame: Buffer, length: number): Promise<void> {
    return this.put(hash, () => frame, length);
  }

  /** The next chunk is the previous backup's chunk at this index: referenced, nothing stored. */
  async same(): Promise<void> {
    this.throwIfFailed();
    const prev = this.current().prev;
    const index = this.hashes.length;
    const hash = prev?.hashes[index];
    if (prev === undefined || hash === undefined) throw new Error(`chunk ${index} of ${this.current().file.path} has no previous chunk to reuse`);
    const length = chunkLength(prev.size, this.chunkSize, index);
    this.hashes.push(hash);
    this.size += length;
    this.totals.reusedBytes += length;
  }

  async end(): Promise<ManifestFile> {
    const item = this.current();
    if (this.hashes.length === 0) throw new Error(`internal: ${item.file.path} ended without a chunk`);
    this.item = undefined;
    return { path: item.file.path, size: this.size, mtimeMs: item.file.mtimeMs, mode: item.file.mode, hashes: this.hashes };
  }

  missing(): void {
    if (this.hashes.length > 0) throw new Error(`internal: ${this.current().file.path} reported missing after its chunks`);
    this.item = undefined;
  }

  /** Wait for every upload started so far; throws the first that failed. */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    this.throwIfFailed();
  }
}
