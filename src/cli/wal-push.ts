/**
 * `pgbk wal-push [--config F] SERVER PATH` — the archive_command for a catalog on the same host:
 * `archive_command = 'pgbk wal-push main %p'`. PostgreSQL calls it once per WAL file and retries on
 * any non-zero exit, so: exit 0 only once the file is durable in the archive (or a byte-identical
 * copy already is); exit 1 on any doubt, with the reason on stderr (it lands in PostgreSQL's log).
 * Kept free of the planner and other heavy imports: it runs once per 16 MiB of WAL.
 *
 * `pgbk wal-push [--config F] --print-archive-command [--pgdata DIR] [--wait-seconds N] SERVER`
 * prints the archive_command for busy servers instead: a shell fast path that answers without
 * starting Node once the long-lived local worker has made the segment durable, in front of the
 * tiny client `wal-push --config F --worker SERVER %p` (wal-push-client.ts). Same archive, same
 * rule; what PostgreSQL waits for per segment drops from a Node start to a few milliseconds.
 */
import { realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { archiveWalFile } from '../catalog/wal-archive.js';
import { ensureServerDirs, serverDir } from '../catalog/layout.js';
import { repositoryKindOf } from '../catalog/open.js';
import { isNoSpaceError, noSpaceError } from '../catalog/no-space.js';
import { readIdentity } from '../catalog/identity.js';
import { classifyIncoming } from '../pg/wal-name.js';
import { PgbkError } from '../errors.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, requirePositional } from './options.js';
import { localRoute, PUSH_FLAGS } from '../wal-push/target.js';
import { WAL_PUSH_OPTIONS } from './commands.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('wal-push', args, WAL_PUSH_OPTIONS);
  // The SSH flags are in wal-push's definition (its help lists them) but mean nothing without --to.
  const remoteOnly = Object.keys(PUSH_FLAGS).filter((k) => (values as Record<string, unknown>)[k] !== undefined);
  if (remoteOnly.length > 0) throw new PgbkError('USAGE', `wal-push: ${remoteOnly.map((k) => `--${k}`).join(', ')} go with --to ssh://USER@HOST/CATALOG`);
  const serverName = requirePositional('wal-push', positionals, 0, 'SERVER');
  if (values['print-archive-command'] === true) return printLocalArchiveCommand(serverName, values, io);
  if (values.pgdata !== undefined || values['wait-seconds'] !== undefined)
    throw new PgbkError('USAGE', 'wal-push: --pgdata and --wait-seconds go with --print-archive-command');
  const file = requirePositional('wal-push', positionals, 1, 'PATH (%p)');
  const desired = await loadDesired(values.config, io, { s3: true });
  const server = desired.servers.find((s) => s.name === serverName);
  if (server === undefined) throw new PgbkError('USAGE', `wal-push: unknown server "${serverName}"`);
  const name = basename(file);
  const kind = classifyIncoming(name);
  // .partial: the last segment of the old timeline, archived by a promoted standby; refusing it
  // would block archiving of everything after it (PostgreSQL archives in order).
  if (kind !== 'segment' && kind !== 'history' && kind !== 'backup' && kind !== 'partial') {
    throw new PgbkError('WAL', `wal-push: ${name} is not a WAL segment, .partial, .history or .backup file`, { server: serverName, path: file });
  }
  try {
    // Into an object store the segment goes straight to the bucket: the local spool (incoming/,
    // owned by whoever runs pgbk backup/apply, perhaps not this database user) is not needed, and
    // creating it here failed with EACCES, so archiving stalled and a backup waited for its end
    // segment until backup.archiveTimeout (the hang of restore/remote/s3-remote, commit 3f5cdfc).
    if (repositoryKindOf(desired.catalog) === 'posix') await ensureServerDirs(desired.catalog, serverName);
    let identity = await readIdentity(desired.catalog, serverName);
    if (identity === undefined) {
      // First contact: learn the identity from the server when we can, else from this segment.
      const { ensureIdentity, identityFromSegment } = await import('../apply/identity.js');
      identity =
        server.connection !== undefined || kind !== 'segment'
          ? await ensureIdentity(desired.catalog, server, new Date())
          : await identityFromSegment(desired.catalog, serverName, file, new Date());
      if (identity === undefined) throw new PgbkError('IDENTITY', 'wal-push: the cluster identity is not known yet', { server: serverName });
    }
    const outcome = await archiveWalFile({
      catalog: desired.catalog,
      server: serverName,
      sourcePath: file,
      name,
      identity,
      compression: server.wal.compression,
    });
    if (outcome.result === 'rejected') {
      throw new PgbkError('WAL', `wal-push: refusing ${name}: ${outcome.reason}`, { server: serverName, path: file });
    }
    return 0;
  } catch (err) {
    // A full disk anywhere else on the way (server.json at first contact, directories) says where too.
    if (isNoSpaceError(err))
      throw await noSpaceError(err, { server: serverName, file: (err as NodeJS.ErrnoException).path ?? serverDir(desired.catalog, serverName) });
    throw err;
  }
}

/** The fast-path archive_command for the local catalog's worker (run as PostgreSQL's OS user). */
async function printLocalArchiveCommand(
  serverName: string,
  values: { readonly config?: string | undefined; readonly pgdata?: string | undefined; readonly 'wait-seconds'?: string | undefined },
  io: CliIo,
): Promise<number> {
  const desired = await loadDesired(values.config, io, { s3: true });
  if (!desired.servers.some((s) => s.name === serverName)) throw new PgbkError('USAGE', `wal-push: unknown server "${serverName}"`);
  // Absolute and without symlinks: the worker is named by this path (wal-push/target.ts).
  const config = await realpath(desired.configPath);
  const { fastPathCommand } = await import('../wal-push/client.js');
  const cmd = await fastPathCommand(localRoute(config, serverName), ['--config', config, '--worker'], values.pgdata ?? io.cwd, values['wait-seconds'], io.cwd);
  io.stdout.write(`${cmd}\n`);
  return 0;
}
