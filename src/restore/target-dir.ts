/**
 * The directories a restore writes into, on whichever host it restores onto (host.ts). A restore
 * never mixes with existing files: a non-empty directory is refused unless --force, which deletes
 * its contents first (and says so). A running PostgreSQL's data directory is refused even with
 * --force. Paths are compared by real path, resolved on the host that holds them (symbolic links
 * included; `cd -P` over SSH), so no link leads a restore into the catalog (when the host is, or
 * may be, this one) or one restore directory into another.
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { localHost, mayBeThisHost, pidAliveOn, prefix, readTextOn, where, type TargetHost } from './host.js';

export interface DirState {
  /** How messages name it: --target-dir, --tablespace-dir, "tablespace 16385 location". */
  readonly flag: string;
  readonly path: string;
  /** Where `path` really is: its deepest existing ancestor's real path plus the rest. */
  readonly realPath: string;
  readonly exists: boolean;
  readonly entries: readonly string[];
}

export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The real location of a path on this host that may not exist yet (LocalTransport.realPath); a
 * dangling symbolic link on the way is refused: mkdir would follow it to a place not checked here.
 */
export async function resolveReal(p: string, flag: string): Promise<string> {
  return realPathOn(localHost(), path.resolve(p), flag);
}

async function realPathOn(host: TargetHost, abs: string, flag: string): Promise<string> {
  try {
    return await host.transport.realPath(abs);
  } catch (err) {
    const e = err instanceof PgbkError ? err : undefined;
    throw new PgbkError(e?.code === 'NETWORK' ? 'NETWORK' : 'USAGE', `${prefix(host)}${flag} ${where(host, abs)}: ${(err as Error).message}`);
  }
}

/** Refuse a directory that is, holds or lies inside the catalog, comparing real paths. */
async function refuseCatalogOverlap(host: TargetHost, abs: string, real: string, catalog: string, flag: string): Promise<void> {
  // A catalog on object storage (s3://…) has no local directory to overlap.
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(catalog)) return;
  if (!(await mayBeThisHost(host))) return;
  const catalogReal = await resolveReal(catalog, 'catalog');
  if (isInside(real, catalogReal) || isInside(catalogReal, real)) {
    const via = real === abs ? '' : ` (really ${real})`;
    throw new PgbkError(
      'USAGE',
      `${prefix(host)}${flag} ${where(host, abs)}${via} overlaps the catalog ${catalog}${catalogReal === path.resolve(catalog) ? '' : ` (really ${catalogReal})`}${host.local ? '' : ', on this same host'}`,
      {
        hint: 'restore outside the catalog: --force there would delete backups and WAL',
      },
    );
  }
}

/** Read-only checks, done before anything is written (and before the backup is marked in use). */
export async function inspectTargetDir(dir: string, force: boolean, catalog: string, flag = '--target-dir', host: TargetHost = localHost()): Promise<DirState> {
  const t = host.transport;
  const abs = path.resolve(dir);
  const named = `${prefix(host)}${flag} ${where(host, abs)}`;
  const real = await realPathOn(host, abs, flag);
  if (abs === path.parse(abs).root || real === path.parse(real).root) throw new PgbkError('USAGE', `${named}: refusing to restore into the root directory`);
  await refuseCatalogOverlap(host, abs, real, catalog, flag);
  let entries: string[];
  try {
    const st = await t.stat(abs);
    if (st === undefined) return { flag, path: abs, realPath: real, exists: false, entries: [] };
    if (st.type !== 'dir') throw new PgbkError('USAGE', `${named} exists and is not a directory`);
    entries = (await t.list(abs)).map((e) => e.name);
  } catch (err) {
    if (err instanceof PgbkError && (err.code === 'USAGE' || err.code === 'NETWORK')) throw err;
    throw new PgbkError('USAGE', `${named}: ${(err as Error).message}`);
  }
  if (entries.length > 0 && !force) {
    // Over SSH the wording is the one `restore --remote` always used.
    throw new PgbkError('USAGE', `${named} ${host.local ? 'is not empty' : 'exists and is not an empty directory'} (${entries.length} entries)`, {
      hint: 'choose an empty or new directory, or add --force to DELETE its contents first',
    });
  }
  if (entries.includes('postmaster.pid')) {
    const pid = Number((await readTextOn(host, path.join(abs, 'postmaster.pid')).catch(() => '')).split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && (await pidAliveOn(host, pid))) {
      throw new PgbkError('USAGE', `${named} belongs to a running PostgreSQL (pid ${pid}); stop it first`);
    }
  }
  return { flag, path: abs, realPath: real, exists: true, entries };
}

/** Refuse restore directories inside one another (real paths: a link cannot hide it). */
export function refuseNested(host: TargetHost, dirs: readonly DirState[]): void {
  for (let i = 0; i < dirs.length; i++) {
    for (let j = i + 1; j < dirs.length; j++) {
      const a = dirs[i]!;
      const b = dirs[j]!;
      if (isInside(a.realPath, b.realPath) || isInside(b.realPath, a.realPath)) {
        throw new PgbkError(
          'USAGE',
          `${prefix(host)}${b.flag} ${where(host, b.path)} overlaps ${a.flag} ${where(host, a.path)} (real paths ${b.realPath}, ${a.realPath})`,
        );
      }
    }
  }
}

/** Create the directory (mode 0700, as PostgreSQL requires) or empty it when --force allowed that. */
export async function prepareTargetDir(state: DirState, log: (line: string) => void, host: TargetHost = localHost()): Promise<void> {
  if (state.exists && state.entries.length > 0) {
    log(`--force: deleting the ${state.entries.length} existing entries of ${where(host, state.path)}`);
    await host.transport.remove(state.entries.map((e) => path.join(state.path, e)));
  }
  await host.transport.mkdir(state.path, 0o700);
}

/** After a failed restore: leave the directory empty (it was empty or emptied before we began). */
export async function emptyDir(dir: string, host: TargetHost = localHost()): Promise<void> {
  try {
    const entries = await host.transport.list(dir);
    await host.transport.remove(entries.map((e) => path.join(dir, e.name)));
  } catch {
    // nothing there, or the host is gone: nothing more to do
  }
}
