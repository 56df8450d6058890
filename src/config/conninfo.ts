/**
 * libpq connection strings (conninfo) in both forms libpq accepts: "key=value ..." and
 * "postgresql://user:password@host/db?key=value". pgbk never wants a password in its config (it
 * would end up in plans, logs and `ps`), so it detects one, and redacts any it has to print.
 */

/** key=value form: the value is single-quoted (with \' and \\ escapes) or runs to whitespace. */
const KV_PASSWORD = /(^|[\s"'(,;])(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s"']*)/gi;
/** URI form: the password is the part of userinfo after ':' (userinfo ends at '@'). */
const URI_PASSWORD = /(postgres(?:ql)?:\/\/[^@/?#:\s]*):([^@/?#\s]*)@/gi;
/** URI form: ?password=... or &password=... */
const URI_QUERY_PASSWORD = /([?&]password=)([^&#\s"']*)/gi;

/** True if the conninfo carries a password (even an empty one). */
export function hasPassword(conninfo: string): boolean {
  // Fresh non-global copies: a /g regex's test() is stateful (lastIndex).
  return [URI_PASSWORD, URI_QUERY_PASSWORD, KV_PASSWORD].some((re) => new RegExp(re.source, 'i').test(conninfo));
}

/**
 * Any text with every conninfo password value replaced by ***, safe to print. Works on a bare
 * conninfo or on a message that quotes one.
 */
export function redactConninfo(s: string): string {
  return s
    .replace(URI_PASSWORD, '$1:***@')
    .replace(URI_QUERY_PASSWORD, '$1***')
    .replace(KV_PASSWORD, '$1$2***');
}
