/**
 * Where the PostgreSQL client programs are. Debian/Ubuntu install them per major version under
 * /usr/lib/postgresql/<major>/bin, and the PATH wrappers (pg_wrapper) pick a version by cluster
 * config, not by the server we talk to. pg_basebackup and pg_receivewal work against servers of
 * their own major or older, so: PGBK_PG_BINDIR, else the server's major, else the newest newer
 * major installed, else PATH.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PgbkError } from '../errors.js';

const DEBIAN_ROOT = '/usr/lib/postgresql';

/** server_version_num → major (150008 → 15; 90624 → 9, whose tools pgbk does not support anyway). */
export function majorOf(versionNum: number): number {
  return Math.floor(versionNum / 10000);
}

/** Absolute path of a PostgreSQL program suitable for a server of the given version_num. */
export function findPgBinary(name: string, serverVersionNum: number, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['PGBK_PG_BINDIR'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const candidate = path.join(fromEnv, name);
    if (!existsSync(candidate)) {
      throw new PgbkError('CONFIG', `${name} not found in PGBK_PG_BINDIR (${fromEnv})`, { path: candidate });
    }
    return candidate;
  }
  const major = majorOf(serverVersionNum);
  let installed: number[] = [];
  try {
    installed = readdirSync(DEBIAN_ROOT)
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .filter((m) => m >= major && existsSync(path.join(DEBIAN_ROOT, String(m), 'bin', name)))
      .sort((a, b) => a - b);
  } catch {
    // no Debian layout: fall through to PATH
  }
  const chosen = installed[0];
  if (chosen !== undefined) return path.join(DEBIAN_ROOT, String(chosen), 'bin', name);
  return name; // resolved through PATH by spawn; a missing program shows up as ENOENT there
}

/**
 * The major version of a program findPgBinary chose from the Debian layout
 * (/usr/lib/postgresql/<major>/bin/NAME, one directory per postgresql-client-<major> package),
 * read from its path; otherwise by running it (programMajor). Saves a process start per backup.
 */
export function binaryMajor(binary: string): number {
  const m = /^\/usr\/lib\/postgresql\/(\d+)\/bin\/[^/]+$/.exec(binary);
  const major = m?.[1] === undefined ? undefined : Number(m[1]);
  return major !== undefined && major >= 10 ? major : programMajor(binary);
}

/** The major version of a PostgreSQL program ("pg_basebackup (PostgreSQL) 15.8" → 15). */
export function programMajor(binary: string): number {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined) {
    throw new PgbkError('PG', `cannot run ${binary}: ${r.error.message}`, {
      hint: 'install the PostgreSQL client programs or set PGBK_PG_BINDIR',
    });
  }
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(r.stdout);
  if (m === null) throw new PgbkError('PG', `cannot tell the version of ${binary} from "${r.stdout.trim()}"`);
  const first = Number(m[1]);
  // 9.6 and older spell the major with two parts.
  return first >= 10 ? first : first + Number(m[2] ?? 0) / 10;
}
