/**
 * `pgbk backup-agent` (hidden): the database-host end of an `ssh` backup, started by the backup
 * host over SSH; one request on stdin, frames on stdout (backup/ssh/backup-agent.ts). Imports only
 * node built-ins beyond that: it starts in ~100 ms.
 */

import type { Writable } from 'node:stream';
import { runBackupAgent } from '../backup/ssh/backup-agent.js';
import type { CliIo } from './io.js';

export async function main(_args: readonly string[], io: CliIo): Promise<number> {
  return runBackupAgent(process.stdin, io.stdout as Writable, io.stderr);
}
