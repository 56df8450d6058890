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
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { firstOf, lastOf, overviewOf } from '../model/wal-runs.js';
import { serverDir } from '../catalog/layout.js';
import { repositoryKindOf } from '../catalog/open.js';
import type { DrillView } from '../plan/drill.js';
import type { Recoverability } from './status-drills.js';
import type { StatusFacts } from './status-facts.js';
import { formatAge, formatBytes } from './format.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { writeJson } from './json-output.js';
import { indexOptions } from './wal-index.js';
import { readBackupsStrictForView } from './read-cache.js';
import { allInOrder } from '../lib/all-in-order.js';

export type { StatusFacts } from './status-facts.js';

/**
 * One server in `status --json` (fields are only ever added). Pure: facts and now in.
 * `recoverability`: the restore drill and objectives fields (status-drills.ts), computed only for a
 * server with drills or objectives; nothing for every other server.
 */
export function statusEntry(s: ServerConfig, f: StatusFacts, now: Date, recoverability: Recoverability = {}) {
  const nowMs = now.getTime();
  const done = f.backups.filter((b) => b.status === 'DONE');
  const last = done[done.length - 1];
  const byStatus: Record<string, number> = {};
  for (const b of f.backups) byStatus[b.status] = (byStatus[b.status] ?? 0) + 1;
  const wal = overviewOf(f.wal);
  const pitr = { ...(s.retention.pitrWindowSeconds === undefined ? {} : { pitrWindowSeconds: s.retention.pitrWindowSeconds }), now };
  const segSize = f.identity?.walSegmentSize;
  const window: RecoverableWindow | undefined =
    segSize === undefined ? recoverableWindow(f.backups, wal, pitr) : recoverableWindow(f.backups, wal, pitr, segSize);
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
    ...recoverability,
  };
}

export type StatusEntry = ReturnType<typeof statusEntry>;

function noDrillText(): never {
  throw new Error('renderStatusText: an entry has drills but no drillText was given');
}

function ago(iso: string | null, nowMs: number): string {
  if (iso === null) return '';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : `, ${formatAge(Math.max(0, (nowMs - t) / 1000))} ago`;
}

function windowText(w: RecoverableWindow | null, nowMs: number, points: number): string {
  if (w === null) return points === 0 ? 'nothing yet (no DONE backup)' : 'no point-in-time window (no backup holds the WAL after it)';
  if (w.to.wal === null) return 'nothing: no DONE backup has all of its own WAL in the archive (see WAL hole)';
  const from = `${w.from.time === null ? '?' : formatIsoText(w.from.time)} (end of backup ${w.from.backupId})`;
  const to = `WAL ${w.to.wal}${w.to.archivedAt === null ? '' : `, archived ${formatIsoText(w.to.archivedAt)}${ago(w.to.archivedAt, nowMs)}`}`;
  return `from ${from} to ${to}`;
}

function holeText(h: NonNullable<RecoverableWindow['hole']>): string {
  const which = h.backups.length === 1 ? `backup ${h.backups[0]}` : `backups ${h.backups.join(', ')}`;
  const reaches = h.reaches.map((r) => (r.wal === null ? `${r.backupId} cannot be restored: its own WAL is incomplete` : `${r.backupId} reaches WAL ${r.wal}`));
  return `segment ${h.missing} is missing from the archive: a restore from ${which} cannot replay past it (${reaches.join('; ')})`;
}

function unrestorableText(list: RecoverableWindow['unrestorable']): string {
  return list.map((u) => `backup ${u.backupId} (segment ${u.missing} of its own WAL is missing from the archive)`).join('; ');
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

/** The human form: one block per server. `drillText` (plan/drill.ts) is needed only for entries with drills. */
export function renderStatusText(entries: readonly StatusEntry[], now: Date, drillText: (d: DrillView, now: Date) => string = noDrillText): string {
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
      ...(st.recoverableWindow?.hole ? [`  WAL hole      ${holeText(st.recoverableWindow.hole)}`] : []),
      ...(st.recoverableWindow?.beyond
        ? [
            `  WAL hole      segment ${st.recoverableWindow.beyond.missing} is missing from the archive: no restore replays past it; ${plural(st.recoverableWindow.beyond.segments, 'archived segment')} after it cannot be used until the next base backup`,
          ]
        : []),
      ...(st.recoverableWindow?.unrestorable.length ? [`  unrestorable  ${unrestorableText(st.recoverableWindow.unrestorable)}`] : []),
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
  // The drill code (catalog/drills, plan/drill, plan/objectives) is loaded only for a server with
  // drills configured, objectives, or drill records (a posix catalog without a drills/ directory
  // has none): every module counts in a read command's start (issue 13 item 5).
  let drillCode: typeof import('./status-drills.js') | undefined;
  for (const s of selectServers(desired, positionals)) {
    const withDrills =
      s.drill !== undefined ||
      s.objectives !== undefined ||
      repositoryKindOf(desired.catalog) !== 'posix' ||
      existsSync(path.join(serverDir(desired.catalog, s.name), 'drills'));
    if (withDrills) drillCode ??= await import('./status-drills.js');
    const [identity, backups, wal, incoming, quarantined, lock, drills] = await allInOrder([
      readIdentity(desired.catalog, s.name),
      readBackupsStrictForView(desired.catalog, s.name, walIndex),
      readWalOverview(desired.catalog, s.name, walIndex),
      listIncoming(desired.catalog, s.name),
      countQuarantined(desired.catalog, s.name),
      readLock(desired.catalog, s.name),
      withDrills ? drillCode!.readEffectiveDrills(desired.catalog, s.name, hostname()) : [],
    ]);
    const facts: StatusFacts = { identity, backups, wal, incoming, quarantined, lock, drills };
    out.push(statusEntry(s, facts, now, withDrills ? drillCode!.recoverabilityEntry(s, facts, now) : {}));
  }
  if (values.json === true) {
    writeJson(io, 'status', { servers: out });
    return 0;
  }
  io.stdout.write(renderStatusText(out, now, drillCode?.drillText));
  return 0;
}
