/**
 * The backup methods behind one interface: `basebackup` (pg_basebackup over the replication
 * protocol) and `ssh` (a chunked file copy over SSH with a database-host agent). A method takes one
 * backup into the catalog and returns its record (WAITING_FOR_WAL, or FAILED with the reason after
 * writing it); making it DONE once its WAL is archived is the executor's job (apply/base-backup.ts),
 * the same for every method.
 */
import { repositoryKindOf } from '../catalog/open.js';
import type { ServerConfig } from '../config/resolved.js';
import type { BackupRecord } from '../model/types.js';
import type { BackupContext, TakeHooks } from './context.js';

export type { BackupContext, TakeHooks } from './context.js';

export interface BackupMethod {
  readonly name: ServerConfig['backup']['method'];
  take(ctx: BackupContext, slot: string, hooks?: TakeHooks): Promise<BackupRecord>;
}

/** The configured method, loaded on demand: ssh2 stays out of the pg_basebackup path and back. */
export async function backupMethodFor(server: ServerConfig, catalog: string): Promise<BackupMethod> {
  const name = server.backup.method;
  switch (name) {
    case 'basebackup': {
      // Object storage has no directory for pg_basebackup to write into: its archive is streamed.
      if (repositoryKindOf(catalog) !== 'posix') {
        const { takeStreamedBaseBackup } = await import('./basebackup-stream.js');
        return { name, take: takeStreamedBaseBackup };
      }
      const { takeBaseBackup } = await import('./basebackup.js');
      return { name, take: takeBaseBackup };
    }
    case 'ssh': {
      const { takeSshBackup } = await import('./ssh/take-ssh-backup.js');
      return { name, take: takeSshBackup };
    }
    default: {
      const never: never = name;
      return never;
    }
  }
}
