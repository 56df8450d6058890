/**
 * The per-user cache of loaded configurations (lib/user-cache.ts). An entry is the Desired an
 * earlier load produced, stored under a key that covers everything that load depended on: the
 * file's path and sha256, the home directory (~ in paths), the Node.js version and its time zone
 * data (schedule time zones), and the identity (inode, size, mtime) of the code that validates and
 * resolves (this folder's compiled files, pgbk's package.json and its node_modules directory). Any
 * difference is a miss and the file is loaded again, so a cached result is never one the current
 * file and code would not give. PGBK_NO_CACHE=1 turns it off.
 */

import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCacheJson, userCacheDir, writeCacheJson } from '../lib/user-cache.js';
import type { Desired } from './resolved.js';

const CACHE_FORMAT = 1;

export interface ConfigInputs {
  readonly file: string;
  readonly configHash: string;
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
}

let buildIdMemo: string | undefined;

function identity(p: string): string {
  try {
    const st = statSync(p);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return '-';
  }
}

/** The compiled config code and the packages it loads, by file identity (not content: cheap). */
function buildId(): string {
  if (buildIdMemo !== undefined) return buildIdMemo;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const packageRoot = path.resolve(here, '..', '..', '..');
  const parts: string[] = [];
  for (const name of readdirSync(here).sort()) parts.push(`${name}=${identity(path.join(here, name))}`);
  parts.push(`package.json=${identity(path.join(packageRoot, 'package.json'))}`);
  parts.push(`node_modules=${identity(path.join(packageRoot, 'node_modules'))}`);
  buildIdMemo = createHash('sha256').update(parts.join('\n')).digest('hex');
  return buildIdMemo;
}

function keyOf(i: ConfigInputs): string {
  const parts = [CACHE_FORMAT, i.file, i.configHash, i.home, process.version, process.versions.icu ?? '', process.versions.tz ?? '', buildId()];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function place(i: ConfigInputs): { dir: string; name: string } | undefined {
  if (i.env['PGBK_NO_CACHE'] === '1') return undefined;
  const dir = userCacheDir(i.env);
  if (dir === undefined) return undefined;
  return { dir, name: `config-${createHash('sha256').update(i.file).digest('hex').slice(0, 24)}.json` };
}

interface Entry {
  readonly key: string;
  readonly desired: Desired;
}

/** The Desired an earlier load of exactly these inputs produced, or undefined. */
export function readCachedConfig(i: ConfigInputs): Desired | undefined {
  const where = place(i);
  if (where === undefined) return undefined;
  try {
    const entry = readCacheJson(where.dir, where.name) as Entry | undefined;
    if (entry === undefined || entry.key !== keyOf(i)) return undefined;
    const d = entry.desired;
    // The key covers the file's hash; these guard against an entry of some other shape.
    if (d?.configHash !== i.configHash || d.configPath !== i.file || !Array.isArray(d.servers)) return undefined;
    return d;
  } catch {
    return undefined;
  }
}

export function writeCachedConfig(i: ConfigInputs, desired: Desired): void {
  const where = place(i);
  if (where === undefined) return;
  try {
    writeCacheJson(where.dir, where.name, { key: keyOf(i), desired } satisfies Entry);
  } catch {
    // A cache that cannot be written costs the next run its speed, nothing else.
  }
}
