/**
 * SSH-only mode without `ssh.psqlConnection`: where psql on the database host finds the server.
 * psql's defaults (socket /var/run/postgresql, port 5432) miss a cluster on another port or socket
 * directory; the running postmaster says where it listens in $PGDATA/postmaster.pid (PostgreSQL
 * docs, "Database File Layout"): line 4 the port, line 5 the first unix socket directory (empty
 * without sockets), line 6 the first listen_addresses entry.
 */

import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Transport } from '../../transport/transport.js';

export interface PsqlTarget {
  readonly host: string;
  readonly port: string;
}

/** The host (socket directory, else the listen address) and port in postmaster.pid's text. */
export function parsePostmasterPid(text: string): PsqlTarget | undefined {
  const lines = text.split('\n');
  const port = lines[3]?.trim() ?? '';
  if (!/^\d{1,5}$/.test(port)) return undefined;
  const socketDir = lines[4]?.trim() ?? '';
  if (socketDir !== '') return { host: socketDir, port };
  const listen = lines[5]?.trim() ?? '';
  // A wildcard means "every interface": the loopback one of its family reaches it from the host.
  const host = listen === '*' || listen === '0.0.0.0' ? '127.0.0.1' : listen === '::' ? '::1' : listen;
  return host === '' ? undefined : { host, port };
}

async function readSmall(stream: Readable, max: number): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > max) {
      stream.destroy();
      break;
    }
  }
  return text;
}

/**
 * Where the postmaster of `pgdata` listens, read over the transport; undefined when it cannot be
 * told (no postmaster.pid: the server is down, or it is unreadable) — psql's defaults apply then
 * and psql's own error says what failed.
 */
export async function findPostmaster(transport: Transport, pgdata: string): Promise<PsqlTarget | undefined> {
  try {
    return parsePostmasterPid(await readSmall(transport.readStream(path.posix.join(pgdata, 'postmaster.pid')), 4096));
  } catch {
    return undefined;
  }
}

/** psql arguments that select the server: the configured conninfo, or what postmaster.pid says. */
export async function psqlServerArgs(transport: Transport, conninfo: string | undefined, pgdata: string | undefined): Promise<string[]> {
  if (conninfo !== undefined) return ['-d', conninfo];
  const target = pgdata === undefined ? undefined : await findPostmaster(transport, pgdata);
  return target === undefined ? [] : ['-h', target.host, '-p', target.port];
}
