/**
 * The local sink of the push (pusher.ts): the catalog on this host, archived by the same code and
 * rule as `pgbk wal-push SERVER %p` without a worker (catalog/wal-archive.ts): name, size, page
 * magic and system identifier checked, compressed, written and fsynced — acknowledged only then.
 * The same name with the same content already archived is a harmless duplicate; with other
 * content it is refused (never overwritten) and a copy goes to errors/ with the reason, once.
 */

import { readIdentity } from '../catalog/identity.js';
import { ensureServerDirs, serverDir } from '../catalog/layout.js';
import { isNoSpaceError, noSpaceError } from '../catalog/no-space.js';
import { quarantineCopy } from '../catalog/quarantine.js';
import { archiveWalBuffer } from '../catalog/wal-archive.js';
import type { ServerConfig } from '../config/resolved.js';
import type { ServerIdentity } from '../model/types.js';
import { classifyIncoming } from '../pg/wal-name.js';
import type { OpenedSink, PushResult, PushSink } from './pusher.js';

/**
 * Files archived at once. Compression runs on this thread, fsyncs and reads in the thread pool:
 * two in flight keep both going without piling 16 MiB buffers up.
 */
const MAX_IN_FLIGHT = 2;

export class LocalSink implements PushSink {
  readonly maxInFlight = MAX_IN_FLIGHT;
  readonly dead = undefined;
  private identity: ServerIdentity | undefined;

  constructor(
    private readonly catalog: string,
    private readonly server: ServerConfig,
  ) {}

  async send(name: string, file: string, data: Buffer): Promise<PushResult> {
    const server = this.server.name;
    const kind = classifyIncoming(name);
    // .partial: the last segment of the old timeline, archived by a promoted standby.
    if (kind !== 'segment' && kind !== 'history' && kind !== 'backup' && kind !== 'partial') {
      return { name, ok: false, error: `${name} is not a WAL segment, .partial, .history or .backup file` };
    }
    try {
      const identity = await this.identityFor(kind, file);
      const outcome = await archiveWalBuffer({ catalog: this.catalog, server, name, identity, compression: this.server.wal.compression }, data);
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

/** The catalog on this host as the worker's sink. */
export async function openLocalSink(catalog: string, server: ServerConfig): Promise<OpenedSink> {
  await ensureServerDirs(catalog, server.name);
  return {
    sink: new LocalSink(catalog, server),
    description: `archiving into ${serverDir(catalog, server.name)}`,
    close: async () => undefined,
  };
}
