/**
 * Restore drill records (issue 14): <server>/drills/<id>.json, read and written through the
 * repository port like backup.json. A drill writes only its own record: RUNNING when it starts
 * (so a concurrent apply sees the slot taken), PASSED or FAILED when it ends. Readers turn a
 * RUNNING record whose owner is gone into FAILED (effectiveDrill), as observe does for backups.
 */

import { PgbkError } from '../errors.js';
import { isOwnerAlive } from '../lib/process-identity.js';
import type { DrillPhase, DrillRecord, DrillStatus } from '../model/types.js';
import { catalogKeys, isBackupId } from './layout.js';
import { locate, osErrorOf, repositoryOf, type CatalogRef, storeErrorMessage } from './open.js';

export const drillKeys = {
  prefix: (server: string): string => `${catalogKeys.server(server)}/drills/`,
  record(server: string, id: string): string {
    if (!isBackupId(id)) throw new PgbkError('CATALOG', `invalid drill id "${id}"`, { server });
    return `${drillKeys.prefix(server)}${id}.json`;
  },
};

const STATUSES: readonly DrillStatus[] = ['RUNNING', 'PASSED', 'FAILED'];
const PHASES: readonly DrillPhase[] = ['restore', 'replay', 'check'];

function num(o: Record<string, unknown>, k: string): number | undefined {
  return typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : undefined;
}

function text(o: Record<string, unknown>, k: string): string | undefined {
  return typeof o[k] === 'string' ? (o[k] as string) : undefined;
}

/** Parse a record; anything malformed is a CATALOG error naming the file (never half-read). */
export function parseDrillRecord(body: string, where: string, server: string): DrillRecord {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (err) {
    throw new PgbkError('CATALOG', `drill record is not valid JSON: ${(err as Error).message}`, { server, path: where });
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new PgbkError('CATALOG', 'drill record is not a JSON object', { server, path: where });
  }
  const o = data as Record<string, unknown>;
  const status = STATUSES.find((s) => s === o['status']);
  const id = text(o, 'id');
  const slot = text(o, 'slot');
  const startedAt = text(o, 'startedAt');
  const target = text(o, 'target');
  if (o['formatVersion'] !== 1 || status === undefined || id === undefined || slot === undefined || startedAt === undefined || target === undefined) {
    throw new PgbkError('CATALOG', 'drill record lacks formatVersion 1, id, status, slot, startedAt or target', { server, path: where });
  }
  const errors = Array.isArray(o['errors']) ? o['errors'].filter((e): e is string => typeof e === 'string') : [];
  const owner = o['owner'] as DrillRecord['owner'] | undefined;
  const check = o['check'] as { ok?: unknown; detail?: unknown } | undefined;
  const optional = {
    finishedAt: text(o, 'finishedAt'),
    targetLsn: text(o, 'targetLsn'),
    host: text(o, 'host'),
    backupId: text(o, 'backupId'),
    restoreSeconds: num(o, 'restoreSeconds'),
    replaySeconds: num(o, 'replaySeconds'),
    dataBytes: num(o, 'dataBytes'),
    walBytes: num(o, 'walBytes'),
    scratch: text(o, 'scratch'),
    phase: PHASES.find((p) => p === o['phase']),
  };
  return {
    formatVersion: 1,
    id,
    server: text(o, 'server') ?? server,
    status,
    slot,
    startedAt,
    target,
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    ...(owner !== undefined && typeof owner === 'object' && typeof owner.pid === 'number' && typeof owner.host === 'string' ? { owner } : {}),
    ...(check !== undefined && typeof check === 'object' && typeof check.ok === 'boolean'
      ? { check: { ok: check.ok, detail: String(check.detail ?? '') } }
      : {}),
    ...(o['timedOut'] === true ? { timedOut: true } : {}),
    errors,
  };
}

/** Every drill record of the server, sorted by id (none: []). */
export async function readDrills(catalog: CatalogRef, server: string): Promise<DrillRecord[]> {
  const repo = await repositoryOf(catalog);
  const prefix = drillKeys.prefix(server);
  const out: DrillRecord[] = [];
  try {
    for await (const e of repo.listNames(prefix)) {
      if (e.kind !== 'object') continue;
      const name = e.key.slice(prefix.length);
      if (!/^\d{8}T\d{6}Z\.json$/.test(name)) continue;
      const body = await repo.get(e.key);
      if (body !== undefined) out.push(parseDrillRecord(body.toString('utf8'), locate(catalog, e.key), server));
    }
  } catch (err) {
    if (err instanceof PgbkError) throw err;
    const os = osErrorOf(err);
    if (os?.code === 'ENOENT') return [];
    throw new PgbkError('CATALOG', `cannot read drill records: ${(os ?? (err as Error)).message}`, { server, path: locate(catalog, prefix) });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Write (replace) the drill's own record atomically. */
export async function writeDrillRecord(catalog: CatalogRef, record: DrillRecord): Promise<void> {
  const key = drillKeys.record(record.server, record.id);
  try {
    await (await repositoryOf(catalog)).put(key, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o640 });
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot write drill record: ${storeErrorMessage(err)}`, {
      server: record.server,
      path: locate(catalog, key),
      cause: err,
    });
  }
}

/** A RUNNING record whose owner process is gone can never finish: show it as FAILED. */
export function effectiveDrill(d: DrillRecord, thisHost: string): DrillRecord {
  if (d.status !== 'RUNNING' || d.owner === undefined || isOwnerAlive(d.owner, thisHost)) return d;
  return { ...d, status: 'FAILED', errors: [...d.errors, `interrupted: pid ${d.owner.pid} on ${d.owner.host} is gone`] };
}
