/**
 * Two servers in one config that point at the same PostgreSQL would give one cluster two catalogs
 * (two retention policies, WAL split between them). What the config alone can tell: the same
 * endpoint — host (or hostaddr) and port of `connection`, however spelled — or the same data
 * directory on the same SSH host. Connections that differ but still reach one cluster are caught
 * at first contact by system identifier (apply/same-cluster.ts).
 */

import path from 'node:path';
import { parseConninfo } from '../pg/conninfo.js';
import { DEFAULT_SOCKET_DIR } from '../pg/passfile.js';
import type { Problem } from './problem.js';

type Rec = Readonly<Record<string, unknown>>;

function rec(v: unknown): Rec {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A socket directory compares as a normalised path; a host name or address case-insensitively. */
function normalHost(host: string): string {
  if (host === '') return path.posix.normalize(DEFAULT_SOCKET_DIR);
  if (host.startsWith('/') || host.startsWith('@')) return path.posix.normalize(host).replace(/(.)\/$/, '$1');
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/** "host port" a conninfo connects to, or undefined when it cannot be told (unparsable, host lists). */
export function connectionEndpoint(conninfo: string): string | undefined {
  let info;
  try {
    info = parseConninfo(conninfo);
  } catch {
    return undefined; // reported elsewhere (or by libpq at connect time)
  }
  // hostaddr, when given, is where libpq connects; host then only names it (TLS, passfile).
  const host = info['hostaddr'] !== undefined && info['hostaddr'] !== '' ? info['hostaddr'] : (info['host'] ?? '');
  const port = info['port'] !== undefined && info['port'] !== '' ? info['port'] : '5432';
  if (host.includes(',') || port.includes(',') || info['service'] !== undefined) return undefined;
  return `host ${normalHost(host)}, port ${String(Number(port))}`;
}

function sshEndpoint(server: Rec): string | undefined {
  const ssh = rec(server['ssh']);
  const host = str(ssh['host']);
  const pgdata = str(server['pgdata']);
  if (host === undefined || pgdata === undefined || !pgdata.startsWith('/')) return undefined;
  const port = typeof ssh['port'] === 'number' ? ssh['port'] : 22;
  return `data directory ${path.posix.normalize(pgdata).replace(/(.)\/$/, '$1')} on ${host.toLowerCase()}:${port}`;
}

/** One problem per server (in file order) that repeats an earlier server's cluster. */
export function checkSameCluster(servers: Rec): Problem[] {
  const out: Problem[] = [];
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(servers)) {
    const server = rec(value);
    const connection = str(server['connection']);
    const endpoints: [string, string | undefined][] = [
      ['connection', connection === undefined ? undefined : connectionEndpoint(connection)],
      ['pgdata', sshEndpoint(server)],
    ];
    for (const [key, endpoint] of endpoints) {
      if (endpoint === undefined) continue;
      const first = seen.get(`${key}\n${endpoint}`);
      if (first === undefined) {
        seen.set(`${key}\n${endpoint}`, name);
        continue;
      }
      out.push({
        path: ['servers', name, key],
        anchor: 'value',
        message: `servers ${first} and ${name} are the same PostgreSQL (${endpoint}): configure each cluster once, under one server name`,
      });
      break; // one message per server is enough
    }
  }
  return out;
}
