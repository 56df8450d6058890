/**
 * The local sink of the push (pusher.ts): the catalog of this host's configuration — a directory,
 * or an object store (s3://…) reached straight from here — archived by the same code and rule as
 * `pgbk wal-push SERVER %p` without a worker (catalog/wal-archive.ts): name, size, page magic and
 * system identifier checked, compressed, stored durably (posix: written and fsynced; S3: a
 * conditional PUT the server verified by its Content-MD5) — acknowledged only then.
 * The same name with the same content already archived is a harmless duplicate; with other
 * content it is refused (never overwritten) and a copy goes to errors/ with the reason, once.
 */

import { readIdentity } from '../catalog/identity.js';
import { catalogKeys, ensureServerDirs, serverDir } from '../catalog/layout.js';
import { repositoryKindOf, repositoryOf } from '../catalog/open.js';
import { isNoSpaceError, noSpaceError } from '../catalog/no-space.js';
import { quarantineCopy } from '../catalog/quarantine.js';
import { archiveWalBuffer } from '../catalog/wal-archive.js';
import type { ServerConfig } from '../config/resolved.js';
import type { ServerIdentity } from '../model/types.js';
import { classifyIncoming } from '../pg/wal-name.js';
import { CompressPool, frameBound, sharedBuffer } from './compress-pool.js';
import type { OpenedSink, PushResult, PushSink } from './pusher.js';

/**
 * Files archived at once: one per compression thread, and one more whose reads, checksum and
 * fsyncs run meanwhile. An object store answers each PUT after a network round trip (and a HEAD
 * before it), so more files are in flight there to keep the compression threads busy.
 */
const THREADS = 2;
const MAX_IN_FLIGHT = THREADS + 1;
const MAX_IN_FLIGHT_OBJECT_STORE = 6;

/** A compression job's memory: the segment and its frame in shared memory, the frame again in plain memory. */
interface Slot {
  readonly input: Buffer;
  readonly output: Buffer;
  readonly plain: Buffer;
}

export class LocalSink implements PushSink {
  readonly maxInFlight: number;
  readonly dead = undefined;
  private identity: ServerIdentity | undefined;
  /** Buffers of the compression threads, reused like the pusher's read buffers. */
  private readonly slots: Slot[] = [];

  constructor(
    private readonly catalog: string,
    private readonly server: ServerConfig,
    private readonly pool: CompressPool | undefined,
  ) {
    this.maxInFlight = repositoryKindOf(catalog) === 'posix' ? MAX_IN_FLIGHT : MAX_IN_FLIGHT_OBJECT_STORE;
  }

  /**
   * The zstd frame of a segment from a compression thread (in `slot.plain`: WebCrypto hashes no
   * shared memory), or undefined (then archiving compresses on this thread).
   */
  private async frameOf(data: Buffer, slot: Slot): Promise<Buffer | undefined> {
    if (this.pool === undefined) return undefined;
    data.copy(slot.input);
    try {
      const shared = await this.pool.compress(slot.input.subarray(0, data.length), slot.output);
      shared.copy(slot.plain);
      return slot.plain.subarray(0, shared.length);
    } catch {
      return undefined;
    }
  }

  private slot(size: number): Slot {
    const i = this.slots.findIndex((s) => s.input.length === size);
    if (i >= 0) return this.slots.splice(i, 1)[0]!;
    const bound = frameBound(size);
    return { input: sharedBuffer(size), output: sharedBuffer(bound), plain: Buffer.allocUnsafeSlow(bound) };
  }

  async send(name: string, file: string, data: Buffer): Promise<PushResult> {
    const server = this.server.name;
    const kind = classifyIncoming(name);
    // .partial: the last segment of the old timeline, archived by a promoted standby.
    if (kind !== 'segment' && kind !== 'history' && kind !== 'backup' && kind !== 'partial') {
      return { name, ok: false, error: `${name} is not a WAL segment, .partial, .history or .backup file` };
    }
    try {
      const identity = await this.identityFor(kind, file);
      const compression = this.server.wal.compression;
      const slot = compression === 'zstd' && (kind === 'segment' || kind === 'partial') && this.pool !== undefined ? this.slot(data.length) : undefined;
      let outcome: Awaited<ReturnType<typeof archiveWalBuffer>>;
      try {
        const frame = slot === undefined ? undefined : await this.frameOf(data, slot);
        outcome = await archiveWalBuffer({ catalog: this.catalog, server, name, identity, compression }, data, frame);
      } finally {
        if (slot !== undefined && this.slots.length < this.maxInFlight) this.slots.push(slot);
      }
      if (outcome.result !== 'rejected') return { name, ok: true, result: outcome.result };
      const kept = await quarantineCopy(this.catalog, server, name, data, file, outcome.reason);
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
  await ensureServerDirs(catalog, server.name);
  const repo = await repositoryOf(catalog);
  const pool = server.wal.compression === 'zstd' ? new CompressPool(THREADS) : undefined;
  return {
    sink: new LocalSink(catalog, server, pool),
    description: `archiving into ${repo.where(catalogKeys.server(server.name))}`,
    close: async () => pool?.close(),
  };
}
