/**
 * Tablespaces for a restore onto the database host. PostgreSQL records where each tablespace was
 * in the backup's `tablespace_map` ("OID PATH" per line; since PostgreSQL 15 a backslash, CR or LF
 * in PATH is escaped with a backslash), and at the start of recovery it (re)creates
 * pg_tblspc/OID links from that file. So a remote restore unpacks each tablespace where it
 * belongs on the database host — its original location (Barman's default), `DIR/OID` for
 * `--tablespace-dir DIR`, or the DIR of `--tablespace-dir OID=DIR` — and writes tablespace_map
 * with those locations. Pure: unit-tested.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';

export interface TablespaceEntry {
  readonly oid: string;
  readonly location: string;
}

export function parseTablespaceMap(text: string): TablespaceEntry[] {
  const out: TablespaceEntry[] = [];
  let line = '';
  const flush = (): void => {
    if (line === '') return;
    const sp = line.indexOf(' ');
    if (sp > 0) out.push({ oid: line.slice(0, sp), location: line.slice(sp + 1) });
    line = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      line += text[++i];
    } else if (c === '\n') {
      flush();
    } else if (c !== '\r') {
      line += c;
    }
  }
  flush();
  return out.filter((e) => /^\d+$/.test(e.oid));
}

export function formatTablespaceMap(entries: readonly TablespaceEntry[]): string {
  return entries.map((e) => `${e.oid} ${e.location.replace(/[\\\n\r]/g, (c) => `\\${c}`)}\n`).join('');
}

export interface TablespaceDirs {
  /** `--tablespace-dir DIR`: every tablespace goes to DIR/OID. */
  readonly root?: string;
  /** `--tablespace-dir OID=DIR` (repeatable). */
  readonly byOid: ReadonlyMap<string, string>;
}

/** Parse the --tablespace-dir values given with --remote (paths on the database host). */
export function parseTablespaceDirs(values: readonly string[]): TablespaceDirs {
  let root: string | undefined;
  const byOid = new Map<string, string>();
  for (const v of values) {
    const m = /^(\d+)=(.+)$/.exec(v);
    const dir = m === null ? v : m[2]!;
    if (!path.isAbsolute(dir))
      throw new PgbkError('USAGE', `restore --remote: --tablespace-dir ${v}: the directory must be an absolute path on the database host`);
    if (m === null) {
      if (root !== undefined) throw new PgbkError('USAGE', 'restore --remote: give at most one --tablespace-dir DIR (use OID=DIR for single tablespaces)');
      root = path.posix.normalize(dir);
    } else {
      if (byOid.has(m[1]!)) throw new PgbkError('USAGE', `restore --remote: --tablespace-dir ${m[1]}= given twice`);
      byOid.set(m[1]!, path.posix.normalize(dir));
    }
  }
  return { ...(root === undefined ? {} : { root }), byOid };
}

function overlaps(a: string, b: string): boolean {
  const rel = path.posix.relative(a, b);
  return rel === '' || (!rel.startsWith('..') && !path.posix.isAbsolute(rel));
}

/**
 * Where each of the backup's tablespaces goes. Refuses: a mapping for an OID the backup does not
 * have, a tablespace with neither a mapping nor a recorded location, two tablespaces in one place,
 * a location inside (or holding) the data directory.
 */
export function resolveTablespaceLocations(
  oids: readonly string[],
  recorded: readonly TablespaceEntry[],
  dirs: TablespaceDirs,
  dataDir: string,
  backupId: string,
): TablespaceEntry[] {
  for (const oid of dirs.byOid.keys()) {
    if (!oids.includes(oid)) {
      throw new PgbkError(
        'USAGE',
        `restore --remote: --tablespace-dir ${oid}=…: backup ${backupId} has no tablespace ${oid} (it has ${oids.length === 0 ? 'none' : oids.join(', ')})`,
      );
    }
  }
  const out: TablespaceEntry[] = [];
  for (const oid of oids) {
    const location = dirs.byOid.get(oid) ?? (dirs.root === undefined ? recorded.find((e) => e.oid === oid)?.location : path.posix.join(dirs.root, oid));
    if (location === undefined) {
      throw new PgbkError('CATALOG', `backup ${backupId}: tablespace ${oid} has no location in its tablespace_map`, {
        hint: `give --tablespace-dir ${oid}=DIR`,
      });
    }
    if (!path.posix.isAbsolute(location)) throw new PgbkError('CATALOG', `backup ${backupId}: tablespace ${oid} location ${location} is not absolute`);
    if (overlaps(location, dataDir) || overlaps(dataDir, location)) {
      throw new PgbkError('USAGE', `restore --remote: tablespace ${oid} location ${location} overlaps the target directory ${dataDir}`, {
        hint: `give --tablespace-dir ${oid}=DIR`,
      });
    }
    const clash = out.find((e) => overlaps(e.location, location) || overlaps(location, e.location));
    if (clash !== undefined) throw new PgbkError('USAGE', `restore --remote: tablespaces ${clash.oid} and ${oid} would both go to ${location}`);
    out.push({ oid, location });
  }
  return out;
}
