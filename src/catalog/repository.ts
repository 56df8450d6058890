/**
 * The repository port (DESIGN.md §4 "Repository port and drivers"): every catalog read and write
 * goes through this interface, so a new storage is one new driver folder (posix/, later s3/) and
 * one more run of the contract suite (test/integration/catalog/repository-contract.ts).
 *
 * It is deliberately the smallest set of operations both a POSIX file system and an S3-compatible
 * object store can do with the same guarantees (pgBackRest's src/storage/ made the same cut):
 * no rename, no append, no hard links, no directories — those are what object stores lack. What a
 * driver can do better (posix: link(2) for put-if-absent, rename for atomic publish and deletion,
 * fsync of directories) stays inside the driver.
 *
 * Keys are '/'-separated paths relative to the repository root, e.g.
 * "main/wal/0000000100000000/000000010000000000000001.zst" (the layout is catalog/layout.ts's job,
 * not the driver's). A segment starting with '.' is reserved: drivers keep their in-flight temp
 * objects under dot-names, and nothing with a dot-name is ever listed (DESIGN.md §4: "files in
 * flight (temp/dot names) ignored"). Keys are compared and listed in byte order, as S3 does.
 *
 * Absence is a normal answer where the caller has to decide what it means (get, read, stat,
 * readLock return undefined); everything else that fails throws a PgbkError ('CATALOG') naming
 * the key's location.
 */

import type { Readable, Writable } from 'node:stream';
import type { Bytes } from '../lib/atomic.js';

/** What a store knows about one stored object. */
export interface ObjectInfo {
  readonly size: number;
  readonly mtime: Date;
  /**
   * sha256 (hex) of the stored bytes as recorded when the object was created with
   * `putIfAbsent(…, { sha256 })`; undefined when none was recorded. posix: the line in the
   * directory's SHA256SUMS (sha256sum -c works there); object stores: the checksum the server
   * verified on upload. Readers compare it with what they read (end-to-end integrity).
   */
  readonly sha256?: string;
}

/** One entry of a listing, in key (byte) order. */
export type ListEntry =
  | { readonly kind: 'object'; readonly key: string; readonly size: number; readonly mtime: Date }
  /** Only in one-level listings: a "directory" (common prefix), key ending in '/'. */
  | { readonly kind: 'prefix'; readonly key: string };

/** A listing entry without metadata (listNames). */
export type NameEntry = { readonly kind: 'object' | 'prefix'; readonly key: string };

export interface ListOptions {
  /**
   * true: every object under the prefix, at any depth (no 'prefix' entries) — one paginated
   * stream on object stores, a directory walk on posix. false (default): one level, like S3's
   * delimiter '/': objects directly under the prefix's last '/' whose names start with the rest,
   * and one 'prefix' entry per "subdirectory". The WAL archive wants both: one level to find the
   * log directories and history files, recursive to sweep everything.
   */
  readonly recursive?: boolean;
}

export interface PutOptions {
  /** posix file mode (default 0o640, as every catalog file). Object stores ignore it. */
  readonly mode?: number;
}

export interface PutIfAbsentOptions extends PutOptions {
  /** sha256 (hex) of `data`, recorded with the object (see ObjectInfo.sha256). */
  readonly sha256?: string;
}

export type CreateOutcome = 'created' | 'exists';

export interface WriteOptions extends PutOptions {
  /** Publish only if nothing is at the key yet (commit answers 'exists' and stores nothing). */
  readonly ifAbsent?: boolean;
}

export interface WriteResult {
  /** 'exists' only with ifAbsent: something else was published first; ours was discarded. */
  readonly outcome: CreateOutcome;
  readonly size: number;
  /** sha256 (hex) of the bytes written, computed while they streamed through. */
  readonly sha256: string;
}

/**
 * A streaming upload. Bytes go to `stream` (a pipeline target that honours backpressure, so
 * memory stays bounded whatever the size); nothing is visible at the key until commit() resolves,
 * and then all of it is. posix: a dot-named temp file, fsynced, renamed (or linked, for ifAbsent),
 * directory fsynced. Object stores: a multipart upload completed on commit.
 */
export interface ObjectWriter {
  readonly key: string;
  readonly stream: Writable;
  /** After `stream` has finished (pipeline resolved): publish durably. */
  commit(): Promise<WriteResult>;
  /** Discard everything written (temp file / multipart upload); idempotent, never throws for a gone temp. */
  abort(): Promise<void>;
}

export interface GetOptions {
  /**
   * A buffer the caller reuses from object to object (WAL segments read one after another): when
   * the object fits, its bytes are read into it and get returns a view of it, valid until the
   * caller reuses it; else a Buffer of its own. Fresh memory is paged in as it is first written,
   * which on some machines costs ~15× reading the bytes (~4 ms per MiB; bench/RESULTS, session 24).
   */
  readonly into?: Buffer;
}

export interface ReadRange {
  /** First byte (default 0). */
  readonly offset?: number;
  /** At most this many bytes (default: to the end). Reading past the end yields what exists. */
  readonly length?: number;
}

/** Who holds a lock: the body of posix's lock file, byte for byte (JSON in this key order). */
export interface LockHolder {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  readonly since: string; // ISO
  /** The holder's process start (lib/process-identity.ts), so a reused pid is not taken for it. */
  readonly processStart?: string;
}

export interface LockOptions {
  /**
   * How long a lease lives without renew(). posix ignores it: a holder is stale when its pid is
   * dead on this host (a holder on another host is presumed alive — waiting is safe, stealing is
   * not). Object stores, which cannot see processes, use it: the lease object holds the holder and
   * an expiry, and a lease past its expiry may be taken over.
   */
  readonly ttlMs: number;
}

export interface Lease {
  readonly holder: LockHolder;
  /**
   * Extend the lease before it expires (object stores; a long backup calls it every ttl/3).
   * Throws PgbkError 'LOCK' if the lease was lost: its holder must then stop writing.
   */
  renew(): Promise<void>;
  /** Remove the lock if it is still ours; idempotent. */
  release(): Promise<void>;
}

export type LockAttempt =
  | { readonly acquired: true; readonly lease: Lease }
  /** 'unreadable': something is at the key that no pgbk wrote; it is never taken over. */
  | { readonly acquired: false; readonly holder: LockHolder | 'unreadable' };

export interface Repository {
  /** Human-readable location of a key for messages and hints (posix: the absolute path). */
  where(key: string): string;

  /** The whole object, or undefined when absent. For small objects (records, WAL); else read(). */
  get(key: string, opts?: GetOptions): Promise<Buffer | undefined>;
  /** A stream of the object's bytes (optionally a range), or undefined when absent. */
  read(key: string, range?: ReadRange): Promise<Readable | undefined>;
  stat(key: string): Promise<ObjectInfo | undefined>;

  /**
   * Replace the object atomically and durably: a reader sees the old bytes or the new ones, never
   * a mix or a prefix (backup.json, chunked-backup indexes).
   */
  put(key: string, data: Bytes, opts?: PutOptions): Promise<void>;
  /**
   * Create the object only if the key is free, atomically and durably; 'exists' stores nothing.
   * Of concurrent callers (any process, any host) exactly one gets 'created'. Archived WAL is
   * never overwritten: on 'exists' the caller compares contents (duplicate or quarantine).
   */
  putIfAbsent(key: string, data: Bytes, opts?: PutIfAbsentOptions): Promise<CreateOutcome>;
  /** A streaming upload (base backup tars, chunks); see ObjectWriter. */
  openWrite(key: string, opts?: WriteOptions): Promise<ObjectWriter>;

  /** Entries under a prefix in key order, fetched page by page (bounded memory per page). */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ListEntry>;
  /**
   * As list, without size and mtime: posix then needs no stat per file, which keeps listing a
   * 200,000-segment archive fast (object stores return the same page either way).
   */
  listNames(prefix: string, opts?: ListOptions): AsyncIterable<NameEntry>;

  /**
   * Remove objects, batched (object stores: up to 1,000 per request); missing keys are skipped,
   * so it is idempotent. Their recorded sha256 go with them. `removeEmptyParents`: a driver with
   * directories also removes each key's directory when it is left empty (posix: WAL log
   * directories, as pruning does today); object stores have no directories and ignore it.
   */
  delete(keys: readonly string[], opts?: { readonly removeEmptyParents?: boolean }): Promise<void>;
  /**
   * Remove everything under `prefix` (which ends in '/'), idempotently. posix: the directory is
   * first renamed to a dot-name beside it, so it leaves every listing at once and a crash never
   * leaves a half-deleted tree visible; leftovers of interrupted deletions in that parent are
   * finished too. Object stores cannot do that: list + batched delete, so callers delete the
   * object that makes the tree valid (backup.json) first.
   */
  deleteTree(prefix: string): Promise<void>;

  /** Take the lock at `key` if it is free or its holder is stale; never waits (callers poll). */
  tryLock(key: string, holder: LockHolder, opts: LockOptions): Promise<LockAttempt>;
  /** The current holder (for `pgbk status`), 'unreadable', or undefined when nobody holds it. */
  readLock(key: string): Promise<LockHolder | 'unreadable' | undefined>;
}
