import { readIdentity } from '../catalog/identity.js';
import { listIncoming } from '../catalog/incoming.js';
import { readLock } from '../catalog/lock.js';
import { countQuarantined } from '../catalog/quarantine.js';
import { readWalOverview } from '../catalog/wal-overview.js';
import type { ServerConfig } from '../config/resolved.js';
import { selectServers } from '../config/select-servers.js';
import { formatPgVersion, plural, recoverableWindow, restorePoints, type RecoverableWindow, type RestorePoint } from '../plan/recoverable.js';
import { nextScheduledBackup, type NextBackup } from '../plan/schedule.js';
import { formatIsoText } from '../plan/time-text.js';
import { formatDuration } from '../config/duration.js';
import { drillText, drillView, lastFinishedDrill, lastDrill } from '../plan/drill.js';
import { measureRto, rpoAgeSeconds } from '../plan/objectives.js';
import { effectiveDrill, readDrills } from '../catalog/drills.js';
import { hostname } from 'node:os';
import type { ArchivedWal, BackupRecord, DrillRecord, IncomingFile, ServerIdentity } from '../model/types.js';
import { firstOf, lastOf, overviewOf, type WalOverview } from '../model/wal-runs.js';
import { formatAge, formatBytes } from './format.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { writeJson } from './json-output.js';
import { indexOptions } from './wal-index.js';
import { readBackupsStrictForView } from './read-cache.js';

type LockInfo = Awaited<ReturnType<typeof readLock>>;

/** What status reads from the catalog for one server. */
export interface StatusFacts {
  readonly identity: ServerIdentity | undefined;
  readonly backups: readonly BackupRecord[];
  /** The archive: a full listing, or its overview (catalog/wal-overview.ts). */
  readonly wal: ArchivedWal | WalOverview;
  readonly incoming: readonly IncomingFile[];
  readonly quarantined: number;
  readonly lock: LockInfo;
  /** Restore drill records (issue 14), sorted by id; absent or empty: nothing is shown about drills. */
  readonly drills?: readonly DrillRecord[];
}

/**
 * Restore drills and objectives (issue 14), only for servers that have them, so the status of
 * every other server stays exactly as it was.
 */
function recoverabilityEntry(s: ServerConfig, f: StatusFacts, now: Date) {
  const drills = f.drills ?? [];
  const finished = lastFinishedDrill(drills);
  const latest = lastDrill(drills);
  const running = latest?.status === 'RUNNING' ? latest : undefined;
  const out: Record<string, unknown> = {};
  if (s.drill !== undefined || drills.length > 0) {
    out['lastDrill'] = finished === undefined ? null : drillView(finished);
    if (running !== undefined) out['runningDrill'] = drillView(running);
  }
  if (s.objectives !== undefined) {
    const rto = measureRto(drills, f.backups, f.wal, f.identity?.walSegmentSize ?? 16 * 1024 * 1024);
    const rpoAge = rpoAgeSeconds([overviewOf(f.wal).newestMtime], now);
    out['objectives'] = {
      rpoSeconds: s.objectives.rpoSeconds ?? null,
      measuredRpoSeconds: rpoAge === undefined ? null : Math.round(rpoAge),
      rtoSeconds: s.objectives.rtoSeconds ?? null,
      measuredRtoSeconds: rto.drill?.rtoSeconds ?? null,
      measuredByDrill: rto.drill?.id ?? null,
      estimatedRtoSeconds: rto.estimate?.seconds ?? null,
      estimatedForBackup: rto.estimate?.backupId ?? null,
    };
  }
  return out as {
    lastDrill?: ReturnType<typeof drillView> | null;
    runningDrill?: ReturnType<typeof drillView>;
    objectives?: {
      rpoSeconds: number | null;
      measuredRpoSeconds: number | null;
      rtoSeconds: number | null;
      measuredRtoSeconds: number | null;
      measuredByDrill: string | null;
      estimatedRtoSeconds: number | null;
      estimatedForBackup: string | null;
    };
  };
}

/** One server in `status --json` (fields are only ever added). Pure: facts and now in. */
export function statusEntry(s: ServerConfig, f: StatusFacts, now: Date) {
  const nowMs = now.getTime();
  const done = f.backups.filter((b) => b.status === 'DONE');
  const last = done[done.length - 1];
  const byStatus: Record<string, number> = {};
  for (const b of f.backups) byStatus[b.status] = (byStatus[b.status] ?? 0) + 1;
  const wal = overviewOf(f.wal);
  const pitr = { ...(s.retention.pitrWindowSeconds === undefined ? {} : { pitrWindowSeconds: s.retention.pitrWindowSeconds }), now };
  const window: RecoverableWindow | undefined = recoverableWindow(f.backups, wal, pitr);
  const points: RestorePoint[] = restorePoints(f.backups, pitr);
  const next: NextBackup | undefined = nextScheduledBackup(s, f.backups, now);
  return {
    server: s.name,
    description: s.description ?? null,
    systemIdentifier: f.identity?.systemIdentifier ?? null,
    pgVersion: f.identity?.pgVersion ?? null,
    pgVersionText: f.identity?.pgVersion ? formatPgVersion(f.identity.pgVersion) : null,
    backups: byStatus,
    lastBackup: last === undefined ? null : { id: last.id, endTime: last.endTime, size: last.sizes.stored },
    lastBackupAgeSeconds: last === undefined ? null : Math.round((nowMs - Date.parse(last.endTime)) / 1000),
    /** Earliest and latest point a restore can reach; null before the first DONE backup. */
    recoverableWindow: window ?? null,
    /** Older backups restorable only to their own end (standalone pins; older than the PITR window). */
    restorePoints: points,
    /** The schedule's next fire time; null without a schedule. dueNow: a backup is due already. */
    nextBackup: next ?? null,
    walSegments: wal.count,
    firstWal: firstOf(wal.runs) ?? null,
    lastWal: lastOf(wal.runs) ?? null,
    lastWalAgeSeconds: wal.newestMtime === undefined ? null : Math.round((nowMs - Date.parse(wal.newestMtime)) / 1000),
    incoming: f.incoming.filter((x) => x.kind !== 'in-flight').length,
    quarantined: f.quarantined,
    lock: f.lock ?? null,
    ...recoverabilityEntry(s, f, now),
  };
}

export type StatusEntry = ReturnType<typeof statusEntry>;

function ago(iso: string | null, nowMs: number): string {
  if (iso === null) return '';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : `, ${formatAge(Math.max(0, (nowMs - t) / 1000))} ago`;
}

function windowText(w: RecoverableWindow | null, nowMs: number, points: number): string {
  if (w === null) return points === 0 ? 'nothing yet (no DONE backup)' : 'no point-in-time window (no backup holds the WAL after it)';
  const from = `${w.from.time === null ? '?' : formatIsoText(w.from.time)} (end of backup ${w.from.backupId})`;
  const to =
    w.to.wal === null ? '?' : `WAL ${w.to.wal}${w.to.archivedAt === null ? '' : `, archived ${formatIsoText(w.to.archivedAt)}${ago(w.to.archivedAt, nowMs)}`}`;
  return `from ${from} to ${to}`;
}

function restorePointsText(points: readonly RestorePoint[]): string {
  const list = points.map((p) => `${p.backupId} (${p.time === null ? '?' : formatIsoText(p.time)})`).join(', ');
  const why = points.every((p) => p.why === 'pitr-window')
    ? 'older than the PITR window'
    : points.every((p) => p.why === 'standalone')
      ? 'pinned standalone'
      : 'pinned standalone or older than the PITR window';
  return `${plural(points.length, 'backup')} restorable to their end only (${why}): ${list}`;
}

function nextText(n: NextBackup | null, server: string, nowMs: number): string {
  if (n === null) return `no schedule (run pgbk backup ${server})`;
  const inText = formatAge(Math.max(0, (Date.parse(n.time) - nowMs) / 1000));
  const tz = n.timezone === 'UTC' ? '' : ` ${n.timezone}`;
  const due = n.dueNow ? '; one is due now (the next apply takes it)' : '';
  return `${formatIsoText(n.time)} (in ${inText}, schedule "${n.schedule}"${tz})${due}`;
}

function verdict(measured: number | null, limit: number | null): string {
  if (limit === null || measured === null) return '';
  return measured > limit ? ' NOT MET' : ' met';
}

function objectivesText(o: NonNullable<StatusEntry['objectives']>): string {
  const parts: string[] = [];
  if (o.rpoSeconds !== null) {
    parts.push(
      `rpo ${formatDuration(o.rpoSeconds)} (newest WAL ${o.measuredRpoSeconds === null ? 'none yet' : `${formatAge(o.measuredRpoSeconds)} old`}:${verdict(o.measuredRpoSeconds, o.rpoSeconds) || ' unknown'})`,
    );
  }
  if (o.rtoSeconds !== null) {
    const measured =
      o.measuredRtoSeconds === null ? 'no drill measured yet: unknown' : `last drill ${o.measuredRtoSeconds}s:${verdict(o.measuredRtoSeconds, o.rtoSeconds)}`;
    const estimate =
      o.estimatedRtoSeconds === null
        ? ''
        : `; estimate ${formatAge(o.estimatedRtoSeconds)} for backup ${o.estimatedForBackup ?? '?'}:${verdict(o.estimatedRtoSeconds, o.rtoSeconds)}`;
    parts.push(`rto ${formatDuration(o.rtoSeconds)} (${measured}${estimate})`);
  }
  return parts.join(', ');
}

/** The human form: one block per server. */
export function renderStatusText(entries: readonly StatusEntry[], now: Date): string {
  const nowMs = now.getTime();
  const out: string[] = [];
  for (const st of entries) {
    const total = Object.values(st.backups).reduce((a, b) => a + b, 0);
    const parts = Object.entries(st.backups).map(([k, v]) => `${v} ${k}`);
    const lines = [
      `${st.server}${st.description ? ` — ${st.description}` : ''}`,
      `  cluster       ${st.systemIdentifier ?? 'not contacted yet'}${st.pgVersionText ? ` (PostgreSQL ${st.pgVersionText})` : ''}`,
      `  backups       ${total === 0 ? 'none' : `${plural(total, 'backup')}: ${parts.join(', ')}`}`,
      `  last backup   ${st.lastBackup ? `${st.lastBackup.id}, ${formatAge(st.lastBackupAgeSeconds ?? 0)} ago, ${formatBytes(st.lastBackup.size ?? undefined)}` : 'none'}`,
      `  recoverable   ${windowText(st.recoverableWindow, nowMs, st.restorePoints.length)}`,
      ...(st.restorePoints.length === 0 ? [] : [`  older points  ${restorePointsText(st.restorePoints)}`]),
      `  next backup   ${nextText(st.nextBackup, st.server, nowMs)}`,
      `  WAL archive   ${plural(st.walSegments, 'segment')}${st.lastWal ? `, ${st.firstWal} … ${st.lastWal}, newest ${formatAge(st.lastWalAgeSeconds ?? 0)} ago` : ''}`,
      `  incoming      ${plural(st.incoming, 'file')} waiting`,
      `  errors/       ${plural(st.quarantined, 'quarantined file')}`,
      `  lock          ${st.lock ? `held by pid ${st.lock.pid} on ${st.lock.host} (${st.lock.command}) since ${st.lock.since}` : 'free'}`,
      ...(st.lastDrill === undefined ? [] : [`  last drill    ${st.lastDrill === null ? 'none yet' : drillText(st.lastDrill, now)}`]),
      ...(st.runningDrill === undefined ? [] : [`  drill running ${drillText(st.runningDrill, now)}`]),
      ...(st.objectives === undefined ? [] : [`  objectives    ${objectivesText(st.objectives)}`]),
    ];
    out.push(`${lines.join('\n')}\n`);
  }
  return out.join('');
}

/** `pgbk status [SERVER...]`: one block per server — identity, backups, recoverable window, next backup, WAL archive, lock. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('status', args, {} as const);
  const desired = await loadDesired(values.config, io, { s3: true });
  const now = new Date();
  const out: StatusEntry[] = [];
  const walIndex = indexOptions(io);
  for (const s of selectServers(desired, positionals)) {
    const [identity, backups, wal, incoming, quarantined, lock, drills] = await Promise.all([
      readIdentity(desired.catalog, s.name),
      readBackupsStrictForView(desired.catalog, s.name, walIndex),
      readWalOverview(desired.catalog, s.name, walIndex),
      listIncoming(desired.catalog, s.name),
      countQuarantined(desired.catalog, s.name),
      readLock(desired.catalog, s.name),
      readDrills(desired.catalog, s.name),
    ]);
    const thisHost = hostname();
    out.push(statusEntry(s, { identity, backups, wal, incoming, quarantined, lock, drills: drills.map((d) => effectiveDrill(d, thisHost)) }, now));
  }
  if (values.json === true) {
    writeJson(io, 'status', { servers: out });
    return 0;
  }
  io.stdout.write(renderStatusText(out, now));
  return 0;
}
