import { acquireLock, readBackups, writeBackupRecord } from '../catalog/index.js';
import { selectServers } from '../config/select-servers.js';
import { PgbkError } from '../errors.js';
import type { KeepMode } from '../model/types.js';
import { durationFlag } from './apply.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, requirePositional } from './options.js';
import { findBackup } from './show.js';
import { KEEP_OPTIONS } from './commands.js';
import { writeJson } from './json-output.js';

/**
 * `pgbk keep SERVER ID [--target full|standalone] [--release]` (Barman's `keep`): a pinned backup
 * is never deleted by retention. `full` keeps it with all WAL after it; `standalone` keeps only the
 * WAL it needs to be consistent.
 */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('keep', args, KEEP_OPTIONS);
  const serverName = requirePositional('keep', positionals, 0, 'SERVER');
  const which = requirePositional('keep', positionals, 1, 'ID or latest');
  const target = values.target;
  if (target !== 'full' && target !== 'standalone') throw new PgbkError('USAGE', `keep: --target must be full or standalone, not "${target}"`);
  const desired = await loadDesired(values.config, io, { s3: true });
  const [server] = selectServers(desired, [serverName]);
  const lock = await acquireLock(desired.catalog, server!.name, { command: 'pgbk keep', timeoutMs: durationFlag('--lock-timeout', values['lock-timeout']) });
  try {
    const b = findBackup(await readBackups(desired.catalog, server!.name), server!.name, which);
    const keep: KeepMode = values.release === true ? 'none' : target;
    if (keep !== 'none' && b.status !== 'DONE')
      throw new PgbkError('USAGE', `backup ${b.id} is ${b.status}; only DONE backups can be kept`, { server: server!.name });
    await writeBackupRecord(desired.catalog, { ...b, keep });
    if (values.json === true) writeJson(io, 'keep', { server: server!.name, id: b.id, keep });
    else io.stdout.write(keep === 'none' ? `${server!.name} ${b.id}: released (retention applies again)\n` : `${server!.name} ${b.id}: kept (${keep})\n`);
  } finally {
    await lock.release();
  }
  return 0;
}
