import { hostname } from 'node:os';
import { readBackups } from '../catalog/index.js';
import { effectiveBackup } from '../observe/index.js';
import { selectServers } from '../config/select-servers.js';
import { PgbkError } from '../errors.js';
import { backupDurationSeconds, formatPgVersion } from '../plan/recoverable.js';
import { formatAge as formatDuration } from '../plan/time-text.js';
import { type BackupRecord, copyFieldsOf } from '../model/types.js';
import { formatBytes } from './format.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, requirePositional } from './options.js';
import { writeJson } from './json-output.js';

/** Resolve "latest" (newest DONE) or an exact id. */
export function findBackup(backups: readonly BackupRecord[], server: string, which: string): BackupRecord {
  if (which === 'latest') {
    const done = backups.filter((b) => b.status === 'DONE');
    const last = done[done.length - 1];
    if (last === undefined) throw new PgbkError('NOT_FOUND', 'no DONE backup', { server });
    return last;
  }
  const b = backups.find((x) => x.id === which);
  if (b === undefined) throw new PgbkError('NOT_FOUND', `no backup ${which}`, { server, hint: `pgbk list ${server}` });
  return b;
}

/** `pgbk show SERVER ID|latest`: one backup's metadata. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('show', args, {} as const);
  const serverName = requirePositional('show', positionals, 0, 'SERVER');
  const which = requirePositional('show', positionals, 1, 'ID or latest');
  const desired = await loadDesired(values.config, io, { s3: true });
  const [server] = selectServers(desired, [serverName]);
  // A STARTED backup whose owner died shows as FAILED, as the planner sees it.
  const thisHost = hostname();
  const backups = (await readBackups(desired.catalog, server!.name)).map((x) => effectiveBackup(x, thisHost));
  const b = findBackup(backups, server!.name, which);
  if (values.json === true) {
    writeJson(io, 'show', { backup: b });
    return 0;
  }
  // What the copy recorded: nothing while STARTED, everything once copied, what was known if FAILED.
  const c = copyFieldsOf(b);
  const lines: [string, string][] = [
    ['Backup', b.id],
    ['Server', b.server],
    ['Status', b.status + (b.status === 'FAILED' ? ` (${b.error})` : '')],
    ['Method', b.method],
    ['Slot', b.slot],
    ['PostgreSQL', formatPgVersion(b.pgVersion)],
    ['System id', b.systemIdentifier],
    ['Timeline', c.timeline === undefined ? '-' : String(c.timeline)],
    ['Begin', `${b.beginTime}  LSN ${c.beginLsn ?? '-'}  WAL ${c.beginWal ?? '-'}`],
    ['End', `${c.endTime ?? '-'}  LSN ${c.endLsn ?? '-'}  WAL ${c.endWal ?? '-'}`],
    ['Duration', ((d) => (d === undefined ? '-' : formatDuration(d)))(backupDurationSeconds(b))],
    ['Size', `${formatBytes(c.sizes?.data)} data, ${formatBytes(c.sizes?.stored)} stored (${b.compression})`],
    ...(c.copiedBytes !== undefined || c.reusedBytes !== undefined
      ? [
          [
            'Copied',
            `${formatBytes(c.copiedBytes)} copied, ${formatBytes(c.reusedBytes)} reused (hard links)${c.reusedFrom ? ` from ${c.reusedFrom}` : ''}, ${c.fileCount ?? '-'} files`,
          ] as [string, string],
        ]
      : []),
    ['Keep', b.keep],
    ['Files', Object.keys(c.checksums ?? {}).join(', ') || '-'],
  ];
  if (b.status === 'DONE' && (b.inUse ?? []).length > 0)
    lines.push(['In use', (b.inUse ?? []).map((u) => `pid ${u.pid} on ${u.host} since ${u.since}`).join('; ')]);
  for (const [k, v] of lines) io.stdout.write(`${`${k}:`.padEnd(12)}${v}\n`);
  return 0;
}
