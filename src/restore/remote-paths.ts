/**
 * Where the directories of a `restore --remote` really are on the database host, resolved there
 * (symbolic links included), before anything is written. What must not be written into:
 * - the catalog, when the database host is this host (same /etc/machine-id, or either unreadable:
 *   then it is assumed to be, the safe side). A link on the database host into the catalog would
 *   otherwise unpack a cluster into it;
 * - one of the restore's own directories inside another (the data directory and each tablespace).
 * Directories that exist must be empty (checked by the caller), which keeps a restore off the
 * source's data directory and tablespaces there.
 */

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import { isInside, resolveReal } from './target-dir.js';
import type { Transport } from '../transport/transport.js';

/**
 * POSIX sh: the real path of $1's deepest existing ancestor (cd -P; pwd -P) plus the missing
 * rest; exit 3 for a dangling symbolic link on the way (mkdir -p would follow it unchecked).
 */
const REAL_PATH_SH = [
  'p=$1; tail=',
  'while [ ! -e "$p" ] && [ ! -L "$p" ]; do tail="/$(basename -- "$p")$tail"; p=$(dirname -- "$p"); done',
  'if [ -L "$p" ] && [ ! -e "$p" ]; then echo "$p is a symbolic link to a missing target" >&2; exit 3; fi',
  'if [ -d "$p" ]; then r=$(cd -P -- "$p" && pwd -P) || exit 1; else r=$(cd -P -- "$(dirname -- "$p")" && pwd -P) || exit 1; r="${r%/}/$(basename -- "$p")"; fi',
  'printf "%s%s\\n" "${r%/}" "$tail"',
].join('\n');

export async function remoteRealPath(t: Transport, p: string, what: string, server: string): Promise<string> {
  const r = await t.run(['sh', '-c', REAL_PATH_SH, 'sh', p]);
  const out = r.stdout.toString('utf8').replace(/\n$/, '');
  if (r.code !== 0 || !out.startsWith('/')) {
    throw new PgbkError(
      r.code === 3 ? 'USAGE' : 'NETWORK',
      `restore --remote: ${what} ${t.description}:${p}: cannot resolve its real path: ${r.stderr.trim()}`,
      { server },
    );
  }
  return out === '' ? '/' : path.posix.normalize(out);
}

async function localMachineId(): Promise<string | undefined> {
  const id = (await readFile('/etc/machine-id', 'utf8').catch(() => '')).trim();
  return id === '' ? undefined : id;
}

/** true when the database host is this host, or when that cannot be told. */
export async function mayBeThisHost(t: Transport): Promise<boolean> {
  const local = await localMachineId();
  const r = await t.run(['cat', '/etc/machine-id']).catch(() => undefined);
  const remote = r?.code === 0 ? r.stdout.toString('utf8').trim() : '';
  return local === undefined || remote === '' || local === remote;
}

export interface RemoteDir {
  readonly what: string;
  readonly path: string;
}

/** Resolve every directory on the database host and refuse overlaps with the catalog and each other. */
export async function refuseRemoteOverlaps(t: Transport, catalog: string, dirs: readonly RemoteDir[], server: string): Promise<void> {
  const resolved: { what: string; path: string; real: string }[] = [];
  for (const d of dirs) resolved.push({ ...d, real: await remoteRealPath(t, d.path, d.what, server) });
  for (const d of resolved) {
    if (d.real === '/') throw new PgbkError('USAGE', `restore --remote: ${d.what} ${d.path} is the root directory`, { server });
  }
  if (await mayBeThisHost(t)) {
    const catalogReal = await resolveReal(catalog, 'catalog');
    for (const d of resolved) {
      if (isInside(d.real, catalogReal) || isInside(catalogReal, d.real)) {
        throw new PgbkError(
          'USAGE',
          `restore --remote: ${d.what} ${t.description}:${d.path}${d.real === d.path ? '' : ` (really ${d.real})`} overlaps the catalog ${catalogReal}, on this same host`,
          {
            server,
            hint: 'restore outside the catalog',
          },
        );
      }
    }
  }
  for (let i = 0; i < resolved.length; i++) {
    for (let j = i + 1; j < resolved.length; j++) {
      const a = resolved[i]!;
      const b = resolved[j]!;
      if (isInside(a.real, b.real) || isInside(b.real, a.real)) {
        throw new PgbkError(
          'USAGE',
          `restore --remote: ${a.what} ${a.path} and ${b.what} ${b.path} overlap on ${t.description} (real paths ${a.real}, ${b.real})`,
          { server },
        );
      }
    }
  }
}
