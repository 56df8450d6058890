import { hostname } from 'node:os';
import { readBackups } from '../catalog/index.js';
import { effectiveBackup } from '../observe/index.js';
import { selectServers } from '../config/select-servers.js';
import type { BackupRecord } from '../plan/types.js';
import { formatBytes, table } from './format.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { writeJson } from './json-output.js';

/** The stable JSON shape of one backup in `list --json` (issue #2). */
export function listEntry(b: BackupRecord) {
  return {
    server: b.server,
    id: b.id,
    status: b.status,
    beginTime: b.beginTime,
    endTime: b.endTime ?? null,
    beginLsn: b.beginLsn ?? null,
    endLsn: b.endLsn ?? null,
    beginWal: b.beginWal ?? null,
    endWal: b.endWal ?? null,
    timeline: b.timeline ?? null,
    size: b.sizes?.stored ?? null,
    keep: b.keep,
  };
}

/** `pgbk list [SERVER]`: backups, oldest first. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('list', args, {} as const);
  const desired = await loadDesired(values.config, io);
  const servers = selectServers(desired, positionals);
  const backups: BackupRecord[] = [];
  // A STARTED backup whose owner died shows as FAILED, as the planner sees it.
  const thisHost = hostname();
  for (const s of servers) backups.push(...(await readBackups(desired.catalog, s.name)).map((b) => effectiveBackup(b, thisHost)));
  if (values.json === true) {
    writeJson(io, 'list', { backups: backups.map(listEntry) });
    return 0;
  }
  if (backups.length === 0) {
    io.stdout.write('No backups.\n');
    return 0;
  }
  const rows = [['SERVER', 'ID', 'STATUS', 'END TIME', 'SIZE', 'WAL', 'KEEP']];
  for (const b of backups) {
    rows.push([
      b.server,
      b.id,
      b.status,
      b.endTime ?? '-',
      formatBytes(b.sizes?.stored),
      b.beginWal && b.endWal ? `${b.beginWal}…${b.endWal.slice(-8)}` : '-',
      b.keep === 'none' ? '' : b.keep,
    ]);
  }
  io.stdout.write(table(rows));
  return 0;
}
