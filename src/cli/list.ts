import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { readIdentity } from '../catalog/identity.js';
import { readWalOverview } from '../catalog/wal-overview.js';
import { indexOptions } from './wal-index.js';
import { readBackupsForView } from './read-cache.js';
import { effectiveBackup } from '../observe/effective.js';
import { selectServers } from '../config/select-servers.js';
import { backupDurationSeconds, walPerBackup, type BackupWal } from '../plan/recoverable.js';
import { formatAge as formatDuration } from '../plan/time-text.js';
import { type BackupRecord, copyFieldsOf } from '../model/types.js';
import { formatBytes, table } from './format.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { writeJson } from './json-output.js';
import type { DrillView } from '../plan/drill.js';
import { serverDir } from '../catalog/layout.js';
import { repositoryKindOf } from '../catalog/open.js';
import { DEFAULT_SEGMENT_SIZE } from '../pg/wal-name.js';
import { allInOrder } from '../lib/all-in-order.js';

/**
 * The stable JSON shape of one backup in `list --json` (issue #2); fields are only ever added.
 * `wal`: the archived WAL from this backup's beginWal up to the next backup's (see walPerBackup).
 */
export function listEntry(b: BackupRecord, wal?: BackupWal) {
  const c = copyFieldsOf(b);
  return {
    server: b.server,
    id: b.id,
    status: b.status,
    beginTime: b.beginTime,
    endTime: c.endTime ?? null,
    beginLsn: c.beginLsn ?? null,
    endLsn: c.endLsn ?? null,
    beginWal: c.beginWal ?? null,
    endWal: c.endWal ?? null,
    timeline: c.timeline ?? null,
    size: c.sizes?.stored ?? null,
    keep: b.keep,
    durationSeconds: backupDurationSeconds(b) ?? null,
    walSegments: wal?.segments ?? null,
    walBytes: wal?.bytes ?? null,
  };
}

export type ListEntry = ReturnType<typeof listEntry>;

/** The human table; "-" where a value is unknown. */
export function renderListText(entries: readonly ListEntry[]): string {
  if (entries.length === 0) return 'No backups.\n';
  const rows = [['SERVER', 'ID', 'STATUS', 'END TIME', 'DURATION', 'SIZE', 'WAL', 'WAL SIZE', 'KEEP']];
  for (const e of entries) {
    rows.push([
      e.server,
      e.id,
      e.status,
      e.endTime ?? '-',
      e.durationSeconds === null ? '-' : formatDuration(e.durationSeconds),
      formatBytes(e.size ?? undefined),
      e.beginWal && e.endWal ? `${e.beginWal}…${e.endWal.slice(-8)}` : '-',
      e.walBytes === null ? '-' : formatBytes(e.walBytes),
      e.keep === 'none' ? '' : e.keep,
    ]);
  }
  return table(rows);
}

/** `pgbk list [SERVER]`: backups, oldest first, with duration and the WAL each one brings. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('list', args, {} as const);
  const desired = await loadDesired(values.config, io, { s3: true });
  const servers = selectServers(desired, positionals);
  const entries: ListEntry[] = [];
  // A STARTED backup whose owner died shows as FAILED, as the planner sees it.
  const thisHost = hostname();
  // Backups the OS will not let us read are listed on stderr and make the exit status 1: a
  // listing that silently leaves them out would look complete.
  let unreadable = 0;
  const walIndex = indexOptions(io);
  // The last finished restore drill per server that has drills (issue 14): shown under the table.
  const drills: { server: string; lastDrill: DrillView }[] = [];
  // The drill code (and the cron parser it brings) is loaded only for a catalog that has drills:
  // every module counts in a read command's start (issue 13 item 5).
  const withDrills = servers.filter(
    (s) => repositoryKindOf(desired.catalog) !== 'posix' || existsSync(path.join(serverDir(desired.catalog, s.name), 'drills')),
  );
  const drillCode = withDrills.length === 0 ? undefined : await Promise.all([import('../catalog/drills.js'), import('../plan/drill.js')]);
  for (const s of withDrills) {
    const [{ effectiveDrill, readDrills }, { drillView, lastFinishedDrill }] = drillCode!;
    const last = lastFinishedDrill((await readDrills(desired.catalog, s.name)).map((d) => effectiveDrill(d, thisHost)));
    if (last !== undefined) drills.push({ server: s.name, lastDrill: drillView(last) });
  }
  for (const s of servers) {
    const [{ backups, problems }, wal, identity] = await allInOrder([
      readBackupsForView(desired.catalog, s.name, walIndex),
      readWalOverview(desired.catalog, s.name, walIndex),
      readIdentity(desired.catalog, s.name),
    ]);
    for (const p of problems.filter((x) => x.unreadable === true)) {
      io.stderr.write(`pgbk: server ${s.name}: backup ${p.id} is not listed: ${p.reason}\n`);
      unreadable++;
    }
    const effective = backups.map((b) => effectiveBackup(b, thisHost));
    const perBackup = walPerBackup(effective, wal, identity?.walSegmentSize ?? DEFAULT_SEGMENT_SIZE);
    entries.push(...effective.map((b) => listEntry(b, perBackup.get(b.id))));
  }
  if (values.json === true) writeJson(io, 'list', { backups: entries, ...(drills.length === 0 ? {} : { drills }) });
  else {
    io.stdout.write(renderListText(entries));
    const now = new Date();
    for (const d of drills) io.stdout.write(`Last restore drill of ${d.server}: ${drillCode![1].drillText(d.lastDrill, now)}\n`);
  }
  return unreadable === 0 ? 0 : 1;
}
