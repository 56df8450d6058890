/**
 * The libpq password file (~/.pgpass, PGPASSFILE, or the passfile= keyword), read the way libpq
 * reads it, so the `pg` driver finds the same secret pg_basebackup does. pg 8 still has built-in
 * pgpass support but deprecates it; doing it here keeps one behaviour we control and test.
 */

import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** libpq's DEFAULT_PGSOCKET_DIR on Debian/Ubuntu builds: a socket there matches "localhost". */
export const DEFAULT_SOCKET_DIR = '/var/run/postgresql';

export interface PassfileKey {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
}

/** Which file libpq would read: passfile keyword, then PGPASSFILE, then ~/.pgpass. */
export function passfilePath(passfileKeyword: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (passfileKeyword !== undefined && passfileKeyword !== '') return passfileKeyword;
  const fromEnv = env['PGPASSFILE'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return path.join(os.homedir(), '.pgpass');
}

/** Split one line into fields at unescaped ':'; "\x" stands for x. */
function splitFields(line: string): string[] {
  const fields: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === '\\' && i + 1 < line.length) {
      current += line[i + 1];
      i++;
    } else if (ch === ':' && fields.length < 4) {
      fields.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  fields.push(current);
  return fields;
}

/** The password for key from the file's text, or undefined. The first matching line wins. */
export function findPassword(text: string, key: PassfileKey): string | undefined {
  // libpq: a connection through the default socket directory matches a "localhost" entry.
  const host = key.host === '' || key.host === DEFAULT_SOCKET_DIR ? 'localhost' : key.host;
  const wanted = [host, String(key.port), key.database, key.user];
  for (const raw of text.split(/\r?\n/)) {
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = splitFields(raw);
    if (fields.length !== 5) continue;
    const matches = wanted.every((value, index) => fields[index] === '*' || fields[index] === value);
    if (matches) return fields[4];
  }
  return undefined;
}

/**
 * Look the password up in the file libpq would use. Like libpq, a missing file, a non-regular
 * file, or one readable by group/others (on POSIX) is ignored rather than an error.
 */
export function lookupPassfile(file: string, key: PassfileKey): string | undefined {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) return undefined;
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      process.emitWarning(`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`);
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return findPassword(text, key);
}
