/**
 * libpq connection strings, parsed the way libpq parses them, because the YAML's `connection:` is
 * handed both to libpq tools (pg_basebackup) and to the `pg` driver, which only understands URIs.
 * Both spellings are accepted: keyword/value ("host=db1 port=5432") and postgresql:// URIs.
 * Secrets never leave this module unredacted except through formatConninfo(…, { keepPassword }).
 */

import { PgbkError } from '../errors.js';

export type Conninfo = Readonly<Record<string, string>>;

/** Every keyword libpq 15/16 accepts; an unknown one is a typo that libpq would refuse too. */
const KNOWN_KEYWORDS: ReadonlySet<string> = new Set([
  'host',
  'hostaddr',
  'port',
  'dbname',
  'user',
  'password',
  'passfile',
  'channel_binding',
  'connect_timeout',
  'client_encoding',
  'options',
  'application_name',
  'fallback_application_name',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
  'tcp_user_timeout',
  'replication',
  'sslmode',
  'sslcompression',
  'sslcert',
  'sslkey',
  'sslpassword',
  'sslrootcert',
  'sslcrl',
  'sslcrldir',
  'sslsni',
  'sslcertmode',
  'sslnegotiation',
  'requirepeer',
  'ssl_min_protocol_version',
  'ssl_max_protocol_version',
  'krbsrvname',
  'gsslib',
  'gssencmode',
  'gssdelegation',
  'target_session_attrs',
  'load_balance_hosts',
  'service',
  'require_auth',
]);

const SECRET_KEYWORDS: ReadonlySet<string> = new Set(['password', 'sslpassword']);

function isWhitespace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';
}

function isUri(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s.trimStart());
}

/** Parse a libpq conninfo (keyword/value or URI) into keyword → value. Throws PgbkError('CONFIG'). */
export function parseConninfo(s: string): Conninfo {
  const result = isUri(s) ? parseUri(s.trim()) : parseKeywordValue(s);
  for (const key of Object.keys(result)) {
    if (!KNOWN_KEYWORDS.has(key)) {
      throw new PgbkError('CONFIG', `connection string: invalid connection option "${key}"`);
    }
  }
  return result;
}

/** libpq's conninfo_parse: keyword [ws] = [ws] value, value either bare or '…' with \ escapes. */
function parseKeywordValue(s: string): Conninfo {
  const out: Record<string, string> = {};
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && isWhitespace(s[i])) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && !isWhitespace(s[i]) && s[i] !== '=') i++;
    const key = s.slice(keyStart, i);
    while (i < n && isWhitespace(s[i])) i++;
    if (s[i] !== '=') {
      throw new PgbkError('CONFIG', `connection string: missing "=" after "${key}"`);
    }
    i++;
    while (i < n && isWhitespace(s[i])) i++;
    let value = '';
    if (s[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const ch = s[i] as string;
        if (ch === '\\' && i + 1 < n) {
          value += s[i + 1];
          i += 2;
        } else if (ch === "'") {
          i++;
          closed = true;
          break;
        } else {
          value += ch;
          i++;
        }
      }
      if (!closed) {
        throw new PgbkError('CONFIG', `connection string: unterminated quoted value for "${key}"`);
      }
    } else {
      while (i < n && !isWhitespace(s[i])) {
        const ch = s[i] as string;
        if (ch === '\\' && i + 1 < n) {
          value += s[i + 1];
          i += 2;
        } else {
          value += ch;
          i++;
        }
      }
    }
    out[key] = value;
  }
  return out;
}

/** postgresql://[user[:password]@][host][:port][/dbname][?key=value&…] with one host. */
function parseUri(s: string): Conninfo {
  // A host list ("h1:5432,h2:5433") is legal in libpq URIs but WHATWG URL rejects it.
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new PgbkError('CONFIG', 'connection string: malformed postgresql:// URI (host lists are not supported)');
  }
  const out: Record<string, string> = {};
  const decode = (v: string): string => {
    try {
      return decodeURIComponent(v);
    } catch {
      throw new PgbkError('CONFIG', 'connection string: bad percent-encoding in URI');
    }
  };
  if (url.username !== '') out['user'] = decode(url.username);
  if (url.password !== '') out['password'] = decode(url.password);
  // IPv6 literals come back bracketed; libpq wants them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host !== '') out['host'] = decode(host);
  if (url.port !== '') out['port'] = url.port;
  const db = url.pathname.replace(/^\//, '');
  if (db !== '') out['dbname'] = decode(db);
  for (const [key, value] of url.searchParams) out[key] = value;
  return out;
}

function quoteValue(value: string): string {
  if (value !== '' && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Keyword/value form that libpq parses back to the same map. Passwords are replaced by "********"
 * unless keepPassword is set (and even then callers should prefer passing secrets through env).
 */
export function formatConninfo(info: Conninfo, options: { readonly keepPassword?: boolean } = {}): string {
  return Object.entries(info)
    .map(([key, value]) => {
      const shown = SECRET_KEYWORDS.has(key) && options.keepPassword !== true ? '********' : value;
      return `${key}=${quoteValue(shown)}`;
    })
    .join(' ');
}

/**
 * A conninfo safe to print in messages and logs, normalised to keyword/value form. Unparsable input
 * is not echoed at all. (config/conninfo.ts redactConninfo masks passwords inside arbitrary text.)
 */
export function displayConninfo(s: string): string {
  try {
    return formatConninfo(parseConninfo(s));
  } catch {
    return '(unparsable connection string)';
  }
}

/** The conninfo with its password removed, plus that password (to pass through PGPASSWORD). */
export function splitPassword(info: Conninfo): { readonly info: Conninfo; readonly password: string | undefined } {
  const { password, ...rest } = info;
  return { info: rest, password };
}

/**
 * How a libpq program (pg_basebackup, pg_receivewal, psql) is given a conninfo without a secret on
 * its command line, where `ps` shows it to every local user: `--dbname=` without the password,
 * and the password in PGPASSWORD (the child's environment is readable by its owner and root only).
 * sslpassword has no environment variable or file in libpq, so it is refused (the config check
 * refuses it earlier, with the file and line). Throws PgbkError('CONFIG').
 */
export function clientToolConninfo(conninfo: string): { readonly dbname: string; readonly env: Readonly<Record<string, string>> } {
  const { info, password } = splitPassword(parseConninfo(conninfo));
  for (const key of Object.keys(info)) {
    if (SECRET_KEYWORDS.has(key)) {
      throw new PgbkError('CONFIG', `connection string: ${key} cannot be passed to a PostgreSQL client program without showing it on its command line`, {
        hint: 'use a client key without a passphrase (sslkey, mode 0600), and a password file (PGPASSFILE) for passwords',
      });
    }
  }
  return { dbname: formatConninfo(info), env: password === undefined ? {} : { PGPASSWORD: password } };
}
