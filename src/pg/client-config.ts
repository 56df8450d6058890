/**
 * Turns a libpq conninfo into the `pg` driver's ClientConfig, resolving defaults the way libpq does
 * (keyword, then PG* environment, then built-in default) so the SQL probe reaches the same server
 * as pg_basebackup given the same string.
 */

import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type { ClientConfig } from 'pg';
import { PgbkError } from '../errors.js';
import { type Conninfo, parseConninfo } from './conninfo.js';
import { DEFAULT_SOCKET_DIR, lookupPassfile, passfilePath } from './passfile.js';

/** A server that does not answer must not hang `pgbk plan`; libpq's own default is forever. */
const DEFAULT_CONNECT_TIMEOUT_S = 10;

function pick(info: Conninfo, key: string, envName: string, env: NodeJS.ProcessEnv): string | undefined {
  const fromInfo = info[key];
  if (fromInfo !== undefined && fromInfo !== '') return fromInfo;
  const fromEnv = env[envName];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

function readFileOption(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PgbkError('CONFIG', `connection string: cannot read ${what} "${file}": ${(err as Error).message}`, { path: file });
  }
}

/** libpq sslmode → node TLS options. `pg` cannot fall back to plain text, so allow/prefer mean "no TLS". */
function sslOptions(info: Conninfo, env: NodeJS.ProcessEnv): ClientConfig['ssl'] {
  const mode = pick(info, 'sslmode', 'PGSSLMODE', env) ?? 'prefer';
  switch (mode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
    case 'verify-ca':
    case 'verify-full': {
      const tls: ConnectionOptions = { rejectUnauthorized: mode !== 'require' };
      const rootCert = pick(info, 'sslrootcert', 'PGSSLROOTCERT', env) ?? path.join(os.homedir(), '.postgresql', 'root.crt');
      if (mode !== 'require' && existsSync(rootCert)) tls.ca = readFileOption(rootCert, 'sslrootcert');
      const cert = pick(info, 'sslcert', 'PGSSLCERT', env);
      const key = pick(info, 'sslkey', 'PGSSLKEY', env);
      if (cert !== undefined) tls.cert = readFileOption(cert, 'sslcert');
      if (key !== undefined) tls.key = readFileOption(key, 'sslkey');
      // verify-ca checks the chain but, unlike verify-full, not the host name.
      if (mode === 'verify-ca') tls.checkServerIdentity = () => undefined;
      return tls;
    }
    default:
      throw new PgbkError('CONFIG', `connection string: invalid sslmode "${mode}"`);
  }
}

/** ClientConfig plus the `replication` startup parameter, which pg supports but @types/pg omits. */
export type PgClientConfig = ClientConfig & { replication?: string };

/** Build the driver configuration for a conninfo (keyword/value or URI). Throws PgbkError('CONFIG'). */
export function toClientConfig(conninfo: string, env: NodeJS.ProcessEnv = process.env): PgClientConfig {
  const info = parseConninfo(conninfo);
  if (info['service'] !== undefined) {
    throw new PgbkError('CONFIG', 'connection string: service= is not supported; spell out host, port, user and dbname');
  }
  const host =
    pick(info, 'host', 'PGHOST', env) ?? pick(info, 'hostaddr', 'PGHOSTADDR', env) ?? (existsSync(DEFAULT_SOCKET_DIR) ? DEFAULT_SOCKET_DIR : 'localhost');
  if (host.includes(',')) {
    throw new PgbkError('CONFIG', `connection string: host lists ("${host}") are not supported; name one server`);
  }
  const portText = pick(info, 'port', 'PGPORT', env) ?? '5432';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new PgbkError('CONFIG', `connection string: invalid port "${portText}"`);
  }
  const user = pick(info, 'user', 'PGUSER', env) ?? os.userInfo().username;
  const database = pick(info, 'dbname', 'PGDATABASE', env) ?? user;
  const timeoutText = pick(info, 'connect_timeout', 'PGCONNECT_TIMEOUT', env);
  const timeoutS = timeoutText === undefined ? DEFAULT_CONNECT_TIMEOUT_S : Number(timeoutText);
  if (!Number.isFinite(timeoutS) || timeoutS < 0) {
    throw new PgbkError('CONFIG', `connection string: invalid connect_timeout "${timeoutText ?? ''}"`);
  }

  const explicitPassword = pick(info, 'password', 'PGPASSWORD', env);
  const passfile = passfilePath(info['passfile'], env);
  const config: PgClientConfig = {
    host,
    port,
    user,
    database,
    ssl: sslOptions(info, env),
    // libpq's 0 means "wait forever"; pg's 0 means the same.
    connectionTimeoutMillis: Math.round(timeoutS * 1000),
    // Asked only when the server requests a password; looked up like libpq does.
    password:
      explicitPassword ??
      ((): string => {
        const found = lookupPassfile(passfile, { host, port, database, user });
        if (found !== undefined) return found;
        throw new PgbkError('PG', `the server asked for a password for user "${user}"; none in PGPASSWORD or the password file ${passfile}`, {
          hint: 'add a line host:port:database:user:password to the password file (mode 0600)',
        });
      }),
  };
  const appName = pick(info, 'application_name', 'PGAPPNAME', env) ?? info['fallback_application_name'];
  if (appName !== undefined) config.application_name = appName;
  const options = pick(info, 'options', 'PGOPTIONS', env);
  if (options !== undefined) config.options = options;
  const replication = info['replication'];
  if (replication !== undefined) config.replication = replication;
  return config;
}
