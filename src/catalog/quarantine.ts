/**
 * errors/: files pgbk refused (WAL of another cluster, a conflicting duplicate, garbage). They are
 * moved aside with a .reason sidecar and never deleted silently: a DBA decides.
 */

import { link, readFile, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import { fsyncDir, linkNoClobber, writeFileAtomic, writeTemp } from '../lib/atomic.js';
import { sha256Hex } from '../lib/checksum.js';
import { errorsDir } from './layout.js';

const REASON_SUFFIX = '.reason';

function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Move `sourcePath` into errors/ as <name>.<UTC timestamp> (with -1, -2 … when that exists: a
 * quarantined file is never overwritten), write <that>.reason, fsync. Returns the new path.
 * The source must be on the catalog's file system (incoming/ is).
 */
export async function quarantineFile(catalog: string, server: string, sourcePath: string, reason: string, now: Date = new Date()): Promise<string> {
  const dir = errorsDir(catalog, server);
  const base = `${path.basename(sourcePath)}.${stamp(now)}`;
  for (let n = 0; n < 1000; n++) {
    const target = path.join(dir, n === 0 ? base : `${base}-${n}`);
    try {
      await link(sourcePath, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      throw new PgbkError('CATALOG', `cannot quarantine ${sourcePath}: ${(err as Error).message}`, {
        server,
        path: sourcePath,
      });
    }
    const text = `reason: ${reason}\noriginal: ${sourcePath}\ntime: ${now.toISOString()}\n`;
    await writeFileAtomic(target + REASON_SUFFIX, text, { mode: 0o640 });
    await unlink(sourcePath);
    await fsyncDir(dir);
    await fsyncDir(path.dirname(sourcePath));
    return target;
  }
  throw new PgbkError('CATALOG', `too many quarantined copies of ${base}`, { server, path: dir });
}

/** Quarantined files (not counting .reason sidecars or temp files). */
export async function countQuarantined(catalog: string, server: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(errorsDir(catalog, server));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  return names.filter((n) => !n.startsWith('.') && !n.endsWith(REASON_SUFFIX)).length;
}

/**
 * Put a copy of `data` (WAL file `name` that stays where it is: PostgreSQL's pg_wal/%p) into
 * errors/ as <name>.<UTC timestamp> with its .reason sidecar, unless a byte-identical copy of that
 * name is already there: PostgreSQL retries a refused file every minute, and each retry must not
 * add another 16 MiB. Returns the quarantined path (new or existing).
 */
export async function quarantineCopy(
  catalog: string,
  server: string,
  name: string,
  data: Buffer,
  original: string,
  reason: string,
  now: Date = new Date(),
): Promise<string> {
  const dir = errorsDir(catalog, server);
  const sum = sha256Hex(data);
  const names = await readdir(dir).catch((): string[] => []);
  for (const n of names) {
    if (!n.startsWith(`${name}.`) || n.endsWith(REASON_SUFFIX)) continue;
    const p = path.join(dir, n);
    const st = await stat(p).catch(() => undefined);
    if (st?.size === data.length && sha256Hex(await readFile(p)) === sum) return p;
  }
  const base = `${name}.${stamp(now)}`;
  for (let n = 0; n < 1000; n++) {
    const target = path.join(dir, n === 0 ? base : `${base}-${n}`);
    try {
      // Complete before it is visible under its name: temp file, fsync, then a link that fails
      // on an existing name (a quarantined file is never overwritten).
      const tmp = await writeTemp(target, data, { mode: 0o640 });
      if ((await linkNoClobber(tmp, target)) === 'exists') continue;
    } catch (err) {
      throw new PgbkError('CATALOG', `cannot quarantine a copy of ${original}: ${(err as Error).message}`, { server, path: dir });
    }
    const text = `reason: ${reason}\noriginal: ${original}\ntime: ${now.toISOString()}\n`;
    await writeFileAtomic(target + REASON_SUFFIX, text, { mode: 0o640 });
    await fsyncDir(dir);
    return target;
  }
  throw new PgbkError('CATALOG', `too many quarantined copies of ${base}`, { server, path: dir });
}
