/**
 * libpq connection strings (conninfo) in both forms libpq accepts: "key=value ..." and
 * "postgresql://user:password@host/db?key=value". pgbk never wants a secret (password,
 * sslpassword) in its config (it would end up in plans, logs and `ps`), so it detects one, and
 * redacts any it has to print.
 */

import { parseConninfo } from '../pg/conninfo.js';

/** key=value form: the value is single-quoted (with \' and \\ escapes) or runs to whitespace. */
const KV_PASSWORD = /(^|[\s"'(,;])((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s"']*)/gi;
/** URI form: the password is the part of userinfo after ':' (userinfo ends at '@'). */
const URI_PASSWORD = /(postgres(?:ql)?:\/\/[^@/?#:\s]*):([^@/?#\s]*)@/gi;
/** URI form: ?password=... or &password=... */
const URI_QUERY_PASSWORD = /([?&](?:ssl)?password=)([^&#\s"']*)/gi;

/**
 * The libpq secret keyword a conninfo carries (even empty), or undefined. sslpassword first: it is
 * the one that cannot be passed any other way than on a command line.
 */
export function secretKeyword(conninfo: string): 'password' | 'sslpassword' | undefined {
  try {
    // Parsed like libpq, so percent-encoded URI keys and quoting cannot hide one.
    const info = parseConninfo(conninfo);
    if (info['sslpassword'] !== undefined) return 'sslpassword';
    if (info['password'] !== undefined) return 'password';
  } catch {
    // Unparsable (reported where it is used): fall back to the patterns below.
  }
  if (/(^|[\s"'(,;?&])sslpassword\s*=/i.test(conninfo)) return 'sslpassword';
  return hasPassword(conninfo) ? 'password' : undefined;
}

/** True if the conninfo carries a password or sslpassword (even an empty one). */
export function hasPassword(conninfo: string): boolean {
  // Fresh non-global copies: a /g regex's test() is stateful (lastIndex).
  return [URI_PASSWORD, URI_QUERY_PASSWORD, KV_PASSWORD].some((re) => new RegExp(re.source, 'i').test(conninfo));
}

/**
 * Any text with every conninfo password value replaced by ***, safe to print. Works on a bare
 * conninfo or on a message that quotes one.
 */
export function redactConninfo(s: string): string {
  return s.replace(URI_PASSWORD, '$1:***@').replace(URI_QUERY_PASSWORD, '$1***').replace(KV_PASSWORD, '$1$2***');
}
