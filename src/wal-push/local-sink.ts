/**
 * The local sink of the push (pusher.ts): the catalog of this host's configuration — a directory,
 * or an object store (s3://…) reached straight from here — archived by the same code and rule as
 * `pgbk wal-push SERVER %p` without a worker (catalog/wal-archive.ts): name, size, page magic and
 * system identifier checked, compressed, stored durably (posix: written and fsynced; S3: a
 * conditional PUT the server verified against its signed sha256) — acknowledged only then.
 * The same name with the same content already archived is a harmless duplicate; with other
 * content it is refused (never overwritten) and a copy goes to errors/ with the reason, once.
 */

import { readIdentity } from '../catalog/identity.js';
import { catalogKeys, ensureServerDirs, serverDir } from '../catalog/layout.js';
import { repositoryKindOf, repositoryOf } from '../catalog/open.js';
import { isNoSpaceError, noSpaceError } from '../catalog/no-space.js';
import { quarantineCopy } from '../catalog/quarantine.js';
import { ArchiveListing } from '../catalog/archive-listing.js';
import { archiveWalBuffer, type PrecompressedFrame } from '../catalog/wal-archive.js';
import type { ServerConfig } from '../config/resolved.js';
import type { ServerIdentity } from '../model/types.js';
import { classifyIncoming } from '../pg/wal-name.js';
import { CompressPool, isShared, type LentFrame, sharedBuffer } from './compress-pool.js';
import type { OpenedSink, PushResult, PushSink } from './pusher.js';

/**
 * Files archived at once: one per compression thread, and one more whose reads, checksum and
 * fsyncs run meanwhile. An object store answers each PUT after a network round trip (and a HEAD
 * before it), so more files are in flight there to keep the compression threads busy.
 */
const THREADS = 2;
const MAX_IN_FLIGHT = THREADS + 1;
const MAX_IN_FLIGHT_OBJECT_STORE = 6;

/** Files in flight for this catalog (also the frames held at once, so the pool's spare outputs). */
function maxInFlightFor(catalog: string): number {
  return repositoryKindOf(catalog) === 'posix' ? MAX_IN_FLIGHT : MAX_IN_FLIGHT_OBJECT_STORE;
}

export class LocalSink implements PushSink {
  readonly maxInFlight: number;
  readonly dead = undefined;
  private identity: ServerIdentity | undefined;
  /**
   * Object stores: one listing per log directory (reused ≤ 2 s) tells which segments are surely
   * not archived yet, instead of a HEAD per compression kind before each PUT. A local catalog
   * looks with three local stats, cheaper than keeping a listing.
   */
  private readonly listing: ArchiveListing | undefined;

  constructor(
    private readonly catalog: string,
    private readonly server: ServerConfig,
    private readonly pool: CompressPool | undefined,
  ) {
    this.maxInFlight = maxInFlightFor(catalog);
    this.listing = repositoryKindOf(catalog) === 'posix' ? undefined : new ArchiveListing(catalog, server.name);
  }

  /**
   * With compression threads, the pusher reads segments straight into shared memory, which the
   * threads compress in place: no copy of the segment, and no buffer per thread (the worker's
   * memory is the pusher's read buffers, one per file in flight, and the frames being stored).
   */
  readBuffer(size: number): Buffer {
    return this.pool === undefined ? Buffer.allocUnsafeSlow(size) : sharedBuffer(size);
  }

  /**
   * The zstd frame of a segment and its sha256 from a compression thread, in memory the pool lends
   * until release(); or undefined (then archiving compresses on this thread).
   */
  private async frameOf(data: Buffer): Promise<LentFrame | undefined> {
    if (this.pool === undefined || !isShared(data)) return undefined;
    try {
      return await this.pool.compress(data);
    } catch {
      return undefined;
    }
  }

  async send(name: string, file: string, data: Buffer): Promise<PushResult> {
    const server = this.server.name;
    const kind = classifyIncoming(name);
    // .partial: the last segment of the old timeline, archived by a promoted standby.
    if (kind !== 'segment' && kind !== 'history' && kind !== 'backup' && kind !== 'partial') {
      return { name, ok: false, error: `${name} is not a WAL segment, .partial, .history or .backup file` };
    }
    const compression = this.server.wal.compression;
    // Compressed while the identity is looked up (at first contact a request to the store, for
    // every file in flight then) and the log directory listed; a file refused later cost only CPU.
    const framing = compression === 'zstd' && (kind === 'segment' || kind === 'partial') ? this.frameOf(data) : Promise.resolve(undefined);
    try {
      let outcome: Awaited<ReturnType<typeof archiveWalBuffer>>;
      try {
        const identity = await this.identityFor(kind, file);
        const knownAbsent = (await this.listing?.isAbsent(name)) ?? false;
        const frame: PrecompressedFrame | undefined = (await framing)?.frame;
        outcome = await archiveWalBuffer({ catalog: this.catalog, server, name, identity, compression, knownAbsent }, data, frame);
      } finally {
        // Stored, refused or failed: nothing reads the frame any more, its memory serves the next
        // one; and the thread is done reading `data`, which the pusher refills once we answer
        // (frameOf never rejects).
        (await framing)?.release();
      }
      if (outcome.result !== 'rejected') {
        this.listing?.noteStored(name);
        return { name, ok: true, result: outcome.result };
      }
      // A plain copy (rare path): a store's client may not take a view of shared memory.
      const kept = await quarantineCopy(this.catalog, server, name, isShared(data) ? Buffer.from(data) : data, file, outcome.reason);
      return { name, ok: false, error: `refusing ${name}: ${outcome.reason} (a copy is in ${kept})` };
    } catch (err) {
      if (isNoSpaceError(err)) {
        const e = await noSpaceError(err, { server, file: (err as NodeJS.ErrnoException).path ?? serverDir(this.catalog, server) });
        return { name, ok: false, error: e.message };
      }
      throw err;
    }
  }

  /** The catalog's record of the cluster; at first contact learnt as local wal-push does. */
  private async identityFor(kind: 'segment' | 'history' | 'backup' | 'partial', file: string): Promise<ServerIdentity> {
    if (this.identity !== undefined) return this.identity;
    let identity = await readIdentity(this.catalog, this.server.name);
    if (identity === undefined) {
      const { ensureIdentity, identityFromSegment } = await import('../apply/identity.js');
      identity =
        this.server.connection !== undefined || kind !== 'segment'
          ? await ensureIdentity(this.catalog, this.server, new Date())
          : await identityFromSegment(this.catalog, this.server.name, file, new Date());
      if (identity === undefined) throw new Error('the cluster identity is not known yet');
    }
    this.identity = identity;
    return identity;
  }
}

/**
 * The catalog of this host's configuration as the worker's sink: a local directory, or an object
 * store (opened here, so wrong credentials or a missing bucket fail the worker at once, naming them).
 */
export async function openLocalSink(catalog: string, server: ServerConfig): Promise<OpenedSink> {
  // The threads start (and load zstd) while the store is opened: loading its SDK takes a while.
  const pool = server.wal.compression === 'zstd' ? new CompressPool(THREADS, maxInFlightFor(catalog)) : undefined;
  let repo: Awaited<ReturnType<typeof repositoryOf>>;
  try {
    await ensureServerDirs(catalog, server.name);
    repo = await repositoryOf(catalog);
  } catch (err) {
    await pool?.close();
    throw err;
  }
  return {
    sink: new LocalSink(catalog, server, pool),
    description: `archiving into ${repo.where(catalogKeys.server(server.name))}`,
    close: async () => pool?.close(),
  };
}
