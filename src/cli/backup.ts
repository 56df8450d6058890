import { acquireLock, ensureServerDirs } from '../catalog/index.js';
import { selectServers } from '../config/select-servers.js';
import { archiveAllIncoming } from '../apply/archive-wal.js';
import { executeBaseBackup } from '../apply/base-backup.js';
import type { ExecContext } from '../apply/context.js';
import { ensureOwnIdentity } from '../apply/same-cluster.js';
import { failOrphanedBackups } from '../apply/repair.js';
import { durationFlag, progressOption } from './apply.js';
import { listEntry } from './list.js';
import type { CliIo } from './io.js';
import { abortOnSignals, loadDesired, logTo } from './load.js';
import { parseCommand, requirePositional } from './options.js';
import { BACKUP_OPTIONS } from './commands.js';
import { writeJson } from './json-output.js';
import { mark } from '../lib/profile.js';

/** `pgbk backup SERVER`: a one-off base backup now, outside the schedule (its slot is its begin time). */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('backup', args, BACKUP_OPTIONS);
  const serverName = requirePositional('backup', positionals, 0, 'SERVER');
  mark('cli start');
  const desired = await loadDesired(values.config, io, { s3: true });
  mark('config');
  const [server] = selectServers(desired, [serverName]);
  await ensureServerDirs(desired.catalog, server!.name);
  const lock = await acquireLock(desired.catalog, server!.name, { command: 'pgbk backup', timeoutMs: durationFlag('--lock-timeout', values['lock-timeout']) });
  try {
    const now = new Date();
    const { identity, facts } = await ensureOwnIdentity(desired, server!, now);
    const ctx: ExecContext = {
      catalog: desired.catalog,
      server: server!,
      now,
      log: logTo(io),
      identity,
      ...(facts === undefined ? {} : { facts }),
      signal: abortOnSignals(io),
      ...progressOption(io),
    };
    await failOrphanedBackups(ctx);
    await archiveAllIncoming(ctx);
    mark('lock, identity, orphans, incoming archived');
    const record = await executeBaseBackup(ctx, now.toISOString());
    mark('backup taken, its WAL archived, finished');
    if (values.json === true) writeJson(io, 'backup', { backup: listEntry(record) });
    else io.stdout.write(`${server!.name} ${record.id}: ${record.status}\n`);
    return record.status === 'DONE' || record.status === 'WAITING_FOR_WAL' ? 0 : 1;
  } finally {
    await lock.release();
  }
}
