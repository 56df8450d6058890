/**
 * errors/: files pgbk refused (WAL of another cluster, a conflicting duplicate, garbage). They are
 * moved aside with a .reason sidecar and never deleted silently: a DBA decides. The copy in errors/
 * is written through the repository port; the refused file itself is local (incoming/, see open.ts).
 */

import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PgbkError } from '../errors.js';
import { fsyncDir } from '../lib/atomic.js';
import { sha256Hex } from '../lib/checksum.js';
import { catalogKeys } from './layout.js';
import { locate, repositoryOf, type CatalogRef, storeErrorMessage } from './open.js';
import type { CreateOutcome, Repository } from './repository.js';

const REASON_SUFFIX = '.reason';

function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** Copy the local file `source` to `key` unless something is there already. */
async function storeIfAbsent(repo: Repository, key: string, source: string, mode: number): Promise<CreateOutcome> {
  const w = await repo.openWrite(key, { ifAbsent: true, mode });
  try {
    await pipeline(createReadStream(source), w.stream);
    return (await w.commit()).outcome;
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/**
 * Move `sourcePath` into errors/ as <name>.<UTC timestamp> (with -1, -2 … when that exists: a
 * quarantined file is never overwritten), write <that>.reason, then remove the source. Returns
 * where the quarantined copy is.
 */
export async function quarantineFile(catalog: CatalogRef, server: string, sourcePath: string, reason: string, now: Date = new Date()): Promise<string> {
  const repo = await repositoryOf(catalog);
  const dir = catalogKeys.errors(server);
  const base = `${path.basename(sourcePath)}.${stamp(now)}`;
  for (let n = 0; n < 1000; n++) {
    const key = `${dir}${n === 0 ? base : `${base}-${n}`}`;
    try {
      // The copy keeps the source's mode, as the hard link into errors/ it replaces did.
      if ((await storeIfAbsent(repo, key, sourcePath, (await stat(sourcePath)).mode & 0o777)) === 'exists') continue;
    } catch (err) {
      throw new PgbkError('CATALOG', `cannot quarantine ${sourcePath}: ${storeErrorMessage(err)}`, {
        server,
        path: sourcePath,
      });
    }
    const text = `reason: ${reason}\noriginal: ${sourcePath}\ntime: ${now.toISOString()}\n`;
    await repo.put(key + REASON_SUFFIX, text, { mode: 0o640 });
    await unlink(sourcePath);
    await fsyncDir(path.dirname(sourcePath));
    return locate(catalog, key);
  }
  throw new PgbkError('CATALOG', `too many quarantined copies of ${base}`, { server, path: locate(catalog, dir) });
}

/** The names of the quarantined files in errors/, sorted (not counting .reason sidecars or temp files). */
export async function quarantinedNames(catalog: CatalogRef, server: string): Promise<string[]> {
  const dir = catalogKeys.errors(server);
  const names: string[] = [];
  for await (const e of (await repositoryOf(catalog)).listNames(dir)) {
    if (e.kind === 'object' && !e.key.endsWith(REASON_SUFFIX)) names.push(e.key.slice(dir.length));
  }
  return names.sort();
}

/** The .reason text written beside quarantined file `name`, or undefined when there is none. */
export async function quarantineReason(catalog: CatalogRef, server: string, name: string): Promise<string | undefined> {
  return (await (await repositoryOf(catalog)).get(`${catalogKeys.errors(server)}${name}${REASON_SUFFIX}`))?.toString('utf8');
}

/** Quarantined files (not counting .reason sidecars or temp files). */
export async function countQuarantined(catalog: CatalogRef, server: string): Promise<number> {
  return (await quarantinedNames(catalog, server)).length;
}

/**
 * Put a copy of `data` (WAL file `name` that stays where it is: PostgreSQL's pg_wal/%p) into
 * errors/ as <name>.<UTC timestamp> with its .reason sidecar, unless a byte-identical copy of that
 * name is already there: PostgreSQL retries a refused file every minute, and each retry must not
 * add another 16 MiB. Returns where the quarantined copy is (new or existing).
 */
export async function quarantineCopy(
  catalog: CatalogRef,
  server: string,
  name: string,
  data: Buffer,
  original: string,
  reason: string,
  now: Date = new Date(),
): Promise<string> {
  const repo = await repositoryOf(catalog);
  const dir = catalogKeys.errors(server);
  const sum = sha256Hex(data);
  for (const n of await quarantinedNames(catalog, server)) {
    if (!n.startsWith(`${name}.`)) continue;
    const key = `${dir}${n}`;
    const info = await repo.stat(key);
    if (info?.size !== data.length) continue;
    const bytes = await repo.get(key);
    if (bytes !== undefined && sha256Hex(bytes) === sum) return locate(catalog, key);
  }
  const base = `${name}.${stamp(now)}`;
  for (let n = 0; n < 1000; n++) {
    const key = `${dir}${n === 0 ? base : `${base}-${n}`}`;
    try {
      // A quarantined file is never overwritten: created only where nothing is.
      if ((await repo.putIfAbsent(key, data, { mode: 0o640 })) === 'exists') continue;
    } catch (err) {
      throw new PgbkError('CATALOG', `cannot quarantine a copy of ${original}: ${storeErrorMessage(err)}`, {
        server,
        path: locate(catalog, dir),
      });
    }
    const text = `reason: ${reason}\noriginal: ${original}\ntime: ${now.toISOString()}\n`;
    await repo.put(key + REASON_SUFFIX, text, { mode: 0o640 });
    return locate(catalog, key);
  }
  throw new PgbkError('CATALOG', `too many quarantined copies of ${base}`, { server, path: locate(catalog, dir) });
}
