/**
 * Two server names for one PostgreSQL cluster would give it two catalogs that each believe they
 * hold its whole history: two retention policies deleting on their own, WAL split between them,
 * restores from either missing what the other took. The config check refuses identical
 * conninfos (config/same-cluster.ts); connections that differ but reach the same cluster (a socket
 * path and 127.0.0.1, an extra dbname=) are caught here, by system identifier, before anything is
 * recorded for either server.
 */

import type { Desired, ServerConfig } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { probeServer, type ServerFacts } from '../pg/probe.js';
import { readIdentity, recordIdentity } from '../catalog/index.js';
import type { ServerIdentity } from '../model/types.js';
import { learnServer } from './identity.js';

export interface ClusterOf {
  readonly server: string;
  readonly systemIdentifier: string;
}

function sameClusterError(server: string, others: readonly string[], systemIdentifier: string): PgbkError {
  const names = [server, ...others].sort().map((n) => `"${n}"`);
  const list = names.length === 2 ? `${names[0]} and ${names[1]}` : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return new PgbkError('IDENTITY', `servers ${list} are the same PostgreSQL cluster (system identifier ${systemIdentifier}); nothing done for ${server}`, {
    server,
    hint: 'configure each cluster once: remove all but one of these servers from the configuration (their connections differ but reach the same cluster)',
  });
}

/**
 * For each server of `candidates` (identities learned in this run) that shares its system
 * identifier with another candidate or with one of `others` (other configured servers), the error
 * that refuses it, naming all of them. Pure.
 */
export function sameClusterConflicts(candidates: readonly ClusterOf[], others: readonly ClusterOf[]): Map<string, PgbkError> {
  const out = new Map<string, PgbkError>();
  const all = [...candidates, ...others];
  for (const c of candidates) {
    const twins = all.filter((o) => o.server !== c.server && o.systemIdentifier === c.systemIdentifier).map((o) => o.server);
    const unique = [...new Set(twins)];
    if (unique.length > 0) out.set(c.server, sameClusterError(c.server, unique, c.systemIdentifier));
  }
  return out;
}

/**
 * The clusters of the configured servers that are not part of this run (the daemon applies one
 * server at a time): their recorded identity, or — when `probeUnrecorded` (a server of this run is
 * at first contact) — what their live server says, so two servers meeting pgbk at the same time
 * are both refused. A server that cannot be read or reached is skipped: it is not evidence.
 */
export async function otherClusters(desired: Desired, selected: ReadonlySet<string>, probeUnrecorded: boolean): Promise<ClusterOf[]> {
  const out: ClusterOf[] = [];
  for (const s of desired.servers) {
    if (selected.has(s.name)) continue;
    const id = await recordedOrLive(desired.catalog, s, probeUnrecorded);
    if (id !== undefined) out.push({ server: s.name, systemIdentifier: id });
  }
  return out;
}

async function recordedOrLive(catalog: string, server: ServerConfig, probe: boolean): Promise<string | undefined> {
  const recorded = await readIdentity(catalog, server.name).catch(() => undefined);
  if (recorded !== undefined) return recorded.systemIdentifier;
  if (!probe || server.connection === undefined) return undefined;
  return (await probeServer(server.connection).catch(() => undefined))?.systemIdentifier;
}

/**
 * ensureIdentity for a command that works on one server (`pgbk backup`): learn its identity,
 * refuse it when another configured server is the same cluster, and only then record it.
 */
export async function ensureOwnIdentity(
  desired: Desired,
  server: ServerConfig,
  now: Date,
): Promise<{ readonly identity: ServerIdentity | undefined; readonly facts?: ServerFacts }> {
  const firstContact = (await readIdentity(desired.catalog, server.name)) === undefined;
  const learned = await learnServer(desired.catalog, server, now);
  const id = learned.identity;
  if (id === undefined) return { identity: undefined };
  const conflict = sameClusterConflicts(
    [{ server: server.name, systemIdentifier: id.systemIdentifier }],
    await otherClusters(desired, new Set([server.name]), firstContact),
  ).get(server.name);
  if (conflict !== undefined) throw conflict;
  const identity = await recordIdentity(desired.catalog, server.name, id);
  return learned.facts === undefined ? { identity } : { identity, facts: learned.facts };
}
