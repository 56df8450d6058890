import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { hostname } from 'node:os';
import type { Desired, ServerConfig } from '../config/resolved.js';
import { countQuarantined, listArchivedWal, listIncoming, readBackups, readIdentity } from '../catalog/index.js';
import { toPgbkError } from '../errors.js';
import type { Observed, ObservedServer, ServerContact } from '../model/types.js';
import { effectiveBackup } from './effective.js';
import { effectiveDrill, readDrills } from '../catalog/drills.js';
import { streamingDir } from '../catalog/streaming.js';
import { repositoryKindOf } from '../catalog/open.js';
import { archiverNeverArchives } from '../pg/archive-settings.js';

export { effectiveBackup };

/** The catalog path when its root directory does not exist (any other stat error surfaces later). */
async function missingCatalog(catalog: string): Promise<string | undefined> {
  // An object-storage catalog has no root directory: a missing bucket fails when it is opened.
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(catalog)) return undefined;
  try {
    await stat(catalog);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? catalog : undefined;
  }
}

/**
 * One connection attempt, no retries: the plan reports what it found now. Servers without
 * `connection` (ssh-only, or WAL pushed from elsewhere) are not asked: reaching them costs an SSH
 * session, and apply does not need them to archive WAL.
 */
export async function observeContact(server: ServerConfig): Promise<ServerContact | undefined> {
  if (server.connection === undefined) return undefined;
  const { probeServer } = await import('../pg/probe.js');
  try {
    const facts = await probeServer(server.connection);
    const why = archiverNeverArchives(facts);
    return { reachable: true, timeline: facts.timeline, ...(why === undefined ? {} : { archiverNeverArchives: why }) };
  } catch (err) {
    return { reachable: false, error: toPgbkError(err, { server: server.name }).message };
  }
}

/**
 * wal method stream: mtime of the newest file pg_receivewal writes in streaming/ (its .partial is
 * newer than anything archived), for the RPO objective. undefined otherwise or when unreadable.
 */
async function newestStreamed(catalog: string, server: ServerConfig): Promise<string | undefined> {
  if (server.wal.method !== 'stream') return undefined;
  try {
    const dir = streamingDir(catalog, server.name);
    let newest = 0;
    for (const name of await readdir(dir)) {
      if (name.startsWith('.')) continue;
      newest = Math.max(newest, (await stat(path.join(dir, name))).mtimeMs);
    }
    return newest === 0 ? undefined : new Date(newest).toISOString();
  } catch {
    return undefined;
  }
}

export interface ObserveOptions {
  /** Ask each server with a `connection` whether it answers (plan does; read-only views do not). */
  readonly contact?: boolean;
}

export async function observeServer(catalog: string, server: ServerConfig, opts: ObserveOptions = {}): Promise<ObservedServer> {
  const thisHost = hostname();
  const [catalogMissing, contact, identity, backups, wal, incoming, quarantined, drills, streamed] = await Promise.all([
    missingCatalog(catalog),
    opts.contact === true ? observeContact(server) : Promise.resolve(undefined),
    readIdentity(catalog, server.name),
    readBackups(catalog, server.name),
    listArchivedWal(catalog, server.name),
    listIncoming(catalog, server.name),
    countQuarantined(catalog, server.name),
    readDrills(catalog, server.name),
    newestStreamed(catalog, server),
  ]);
  return {
    name: server.name,
    ...(identity === undefined ? {} : { identity }),
    backups: backups.map((b) => effectiveBackup(b, thisHost)),
    wal,
    incoming,
    quarantined,
    ...(contact === undefined ? {} : { contact }),
    ...(catalogMissing === undefined ? {} : { catalogMissing }),
    ...(drills.length === 0 ? {} : { drills: drills.map((d) => effectiveDrill(d, thisHost)) }),
    ...(streamed === undefined ? {} : { newestStreamedMtime: streamed }),
    // Object storage keeps the ssh method's chunks content-addressed (catalog/chunk-store.ts).
    ...(repositoryKindOf(catalog) === 'posix' ? {} : { chunkStore: true }),
  };
}

export async function observe(desired: Desired, only?: readonly string[], opts: ObserveOptions = {}): Promise<Observed> {
  const servers = desired.servers.filter((s) => only === undefined || only.includes(s.name));
  const observed = await Promise.all(servers.map((s) => observeServer(desired.catalog, s, opts)));
  return { servers: observed };
}

/**
 * A narrow fingerprint of what a saved plan was computed from, per server: the backups and their
 * statuses, the archive's extent and incoming/. `apply PLANFILE` refuses to run when it changed.
 * The cluster identity is not part of it: apply records it at first contact (server.json) before
 * it compares, which must not make a plan reviewed on a new catalog stale; the saved plan keeps
 * the identity it saw apart (PlanBasis.identities).
 */
export function observedHash(s: ObservedServer): string {
  const h = createHash('sha256');
  for (const b of s.backups) h.update(`b:${b.id}:${b.status}:${b.keep}:${b.status === 'DONE' ? (b.inUse ?? []).length : 0}\n`);
  const segs = s.wal.segments;
  h.update(`w:${segs.length}:${segs[0] ?? ''}:${segs[segs.length - 1] ?? ''}:${s.wal.backupFiles.length}:${s.wal.partials?.length ?? 0}\n`);
  for (const f of s.incoming) h.update(`i:${f.name}:${f.size}\n`);
  h.update(`q:${s.quarantined}\n`);
  return h.digest('hex');
}
