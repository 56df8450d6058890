import { hostname } from 'node:os';
import { readBackupsWithProblems } from '../catalog/index.js';
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
  // Backups the OS will not let us read are listed on stderr and make the exit status 1: a
  // listing that silently leaves them out would look complete.
  let unreadable = 0;
  for (const s of servers) {
    const { backups: found, problems } = await readBackupsWithProblems(desired.catalog, s.name);
    backups.push(...found.map((b) => effectiveBackup(b, thisHost)));
    for (const p of problems.filter((x) => x.unreadable === true)) {
      io.stderr.write(`pgbk: server ${s.name}: backup ${p.id} is not listed: ${p.reason}\n`);
      unreadable++;
    }
  }
  const status = unreadable === 0 ? 0 : 1;
  if (values.json === true) {
    writeJson(io, 'list', { backups: backups.map(listEntry) });
    return status;
  }
  if (backups.length === 0) {
    io.stdout.write('No backups.\n');
    return status;
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
  return status;
}
