/**
 * Content-addressed chunks (the `ssh` method on object storage, issue 12): a chunk is stored once
 * per server under the sha256 of its uncompressed bytes, as one zstd frame, at
 * `<server>/chunks/<first two hex digits>/<sha256>.zst`. Backups refer to chunks by hash (their
 * files.json lists the hashes per file), so an unchanged chunk is shared between backups by
 * reference instead of by hard link.
 *
 * A chunk is written with put-if-absent: one that is already stored is never rewritten (equal
 * hashes mean equal bytes), so a backup that finds it 'exists' stores nothing. The repository
 * records the sha256 of the stored (compressed) frame and the reader checks the frame's content
 * against the hash in the key, so a damaged or swapped chunk is refused naming its key.
 *
 * Removal is retention's mark-and-sweep (plan/chunk-sweep.ts decides, apply/sweep-chunks.ts
 * executes under the server's lock): a chunk goes only when no retained backup refers to it.
 */

import { PgbkError } from '../errors.js';
import { sha256Hex } from '../lib/checksum.js';
import { catalogKeys } from './layout.js';
import type { CreateOutcome, Repository } from './repository.js';
import { zstdCodec } from './zstd.js';

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_RE = /\/([0-9a-f]{2})\/([0-9a-f]{64})\.zst$/;

/** The key of chunk `hash` of `server`. */
export function chunkKey(server: string, hash: string): string {
  if (!HEX64.test(hash)) throw new PgbkError('CATALOG', `invalid chunk hash "${hash}"`, { server });
  return `${catalogKeys.chunks(server)}${hash.slice(0, 2)}/${hash}.zst`;
}

/** The hash a chunk key names, or undefined for a key that is not a chunk (left alone by the sweep). */
export function hashOfChunkKey(key: string): string | undefined {
  const m = KEY_RE.exec(key);
  return m !== null && m[2]!.startsWith(m[1]!) ? m[2] : undefined;
}

export interface StoredChunk {
  readonly hash: string;
  readonly key: string;
  /** Stored (compressed) bytes. */
  readonly size: number;
  /** When the store last wrote it (put-if-absent never rewrites, so: when it was created). */
  readonly mtime: Date;
}

export interface PutChunkResult {
  readonly outcome: CreateOutcome;
  /** Bytes stored by this call (0 when the chunk was already there). */
  readonly storedBytes: number;
}

export class ChunkStore {
  constructor(
    private readonly repo: Repository,
    private readonly server: string,
    private readonly level = 3,
  ) {}

  where(hash: string): string {
    return this.repo.where(chunkKey(this.server, hash));
  }

  /** Store `raw` under its sha256 (hashed once here; `expected`, when given, must match) unless a chunk with that hash is already stored. */
  async put(raw: Buffer, expected?: string): Promise<PutChunkResult> {
    const hash = sha256Hex(raw);
    if (expected !== undefined && expected !== hash) throw new Error(`internal: chunk bytes do not hash to ${expected}`);
    return this.putFrame(hash, (await zstdCodec()).compress(raw, this.level));
  }

  /**
   * Store a zstd frame made elsewhere (the backup agent compresses on the database host) under
   * `hash`, the sha256 of its uncompressed bytes as the agent computed them, unless that chunk is
   * already stored. The store checks the frame's own sha256 on upload; the content hash is checked
   * whenever the chunk is read (get, restore, verify).
   */
  async putFrame(hash: string, frame: Buffer): Promise<PutChunkResult> {
    const outcome = await this.repo.putIfAbsent(chunkKey(this.server, hash), frame, { sha256: sha256Hex(frame) });
    return { outcome, storedBytes: outcome === 'created' ? frame.length : 0 };
  }

  /** The stored zstd frame of chunk `hash`, unchecked (the reader decompresses and checks it); a CATALOG error naming it when missing. */
  async getFrame(hash: string): Promise<Buffer> {
    const key = chunkKey(this.server, hash);
    const frame = await this.repo.get(key);
    if (frame === undefined) throw new PgbkError('CATALOG', `chunk ${this.repo.where(key)} is missing`, { server: this.server, path: this.repo.where(key) });
    return frame;
  }

  /** Whether chunk `hash` is stored (a HEAD; the next backup skips what is). */
  async has(hash: string): Promise<boolean> {
    return (await this.repo.stat(chunkKey(this.server, hash))) !== undefined;
  }

  /** The uncompressed bytes of chunk `hash`, checked against the hash; a CATALOG error naming it when missing or damaged. */
  async get(hash: string): Promise<Buffer> {
    const key = chunkKey(this.server, hash);
    const frame = await this.getFrame(hash);
    let raw: Buffer;
    try {
      raw = (await zstdCodec()).decompress(frame);
    } catch (err) {
      throw new PgbkError('CATALOG', `chunk ${this.repo.where(key)} is damaged: ${(err as Error).message}`, {
        server: this.server,
        path: this.repo.where(key),
        cause: err,
      });
    }
    if (sha256Hex(raw) !== hash) {
      throw new PgbkError('CATALOG', `chunk ${this.repo.where(key)} does not match its sha256`, { server: this.server, path: this.repo.where(key) });
    }
    return raw;
  }

  /** Every stored chunk, in key order (page by page). */
  async *list(): AsyncGenerator<StoredChunk> {
    for await (const e of this.repo.list(catalogKeys.chunks(this.server), { recursive: true })) {
      if (e.kind !== 'object') continue;
      const hash = hashOfChunkKey(e.key);
      if (hash !== undefined) yield { hash, key: e.key, size: e.size, mtime: e.mtime };
    }
  }

  /** Remove these chunks (batched by the repository). */
  async delete(hashes: readonly string[]): Promise<void> {
    await this.repo.delete(hashes.map((h) => chunkKey(this.server, h)));
  }
}
