/**
 * The machine a restore writes onto, reached through the Transport port: this host
 * (LocalTransport) or the database host over SSH (`restore --remote`, SshTransport). The one
 * restore (restore.ts) runs every step against a TargetHost; `local` only chooses how messages
 * name paths, where a stored tar is decompressed, and lets pg_verifybackup read the catalog's
 * backup_manifest in place. Nothing here runs a program per file.
 */

import { readFile } from 'node:fs/promises';
import { PgbkError } from '../errors.js';
import { LocalTransport } from '../transport/local.js';
import type { Transport } from '../transport/transport.js';

export interface TargetHost {
  readonly transport: Transport;
  /** This machine: the catalog's files are readable at their own paths; messages name bare paths. */
  readonly local: boolean;
}

export function localHost(): TargetHost {
  return { transport: new LocalTransport(), local: true };
}

export function remoteHost(transport: Transport): TargetHost {
  return { transport, local: false };
}

/** A path as messages name it: bare on this host, `ssh USER@HOST:PORT:/path` on another. */
export function where(host: TargetHost, p: string): string {
  return host.local ? p : `${host.transport.description}:${p}`;
}

/** What a message about the target starts with ("restore --remote: " over SSH, as before). */
export function prefix(host: TargetHost): string {
  return host.local ? '' : 'restore --remote: ';
}

/** A small text file on the host, or '' when it does not exist. */
export async function readTextOn(host: TargetHost, file: string): Promise<string> {
  const parts: Buffer[] = [];
  try {
    for await (const c of host.transport.readStream(file)) parts.push(c as Buffer);
  } catch (err) {
    if (err instanceof PgbkError && err.code === 'NOT_FOUND') return '';
    throw err;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Whether process `pid` runs on the host (a process of another user counts: EPERM). */
export async function pidAliveOn(host: TargetHost, pid: number): Promise<boolean> {
  const r = await host.transport.run(['sh', '-c', 'kill -0 "$1" 2>/dev/null || [ -d "/proc/$1" ]', 'sh', String(pid)]);
  return r.code === 0;
}

async function localMachineId(): Promise<string | undefined> {
  const id = (await readFile('/etc/machine-id', 'utf8').catch(() => '')).trim();
  return id === '' ? undefined : id;
}

/** true when the host is this machine, or when that cannot be told (the safe side). */
export async function mayBeThisHost(host: TargetHost): Promise<boolean> {
  if (host.local) return true;
  const local = await localMachineId();
  const r = await host.transport.run(['cat', '/etc/machine-id']).catch(() => undefined);
  const remote = r?.code === 0 ? r.stdout.toString('utf8').trim() : '';
  return local === undefined || remote === '' || local === remote;
}
