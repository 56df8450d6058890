/**
 * The prefetch spool of `pgbk wal-fetch`: a directory where a background worker puts the next WAL
 * segments, decompressed and verified, before PostgreSQL asks for them. Default location:
 * `<data directory>/.pgbk-spool` (derived from %p = pg_wal/RECOVERYXLOG; PostgreSQL ignores
 * unknown entries in its data directory, and the same file system lets a spooled segment be
 * handed over with one rename). `recovery_end_command` removes the spool when recovery ends.
 *
 * Rules that keep it safe (a wrong or partial file replayed would corrupt the restore):
 * - a spooled segment is complete only when its sidecar NAME.json exists; both are written to
 *   temp names and renamed, data first, sidecar last;
 * - before it is handed over, its sha256 is recomputed and compared with the sidecar, which also
 *   names the server; any mismatch discards it and the segment is read from the archive instead;
 * - archived files never change content under a name (the archive refuses to overwrite), so a
 *   verified spooled copy is byte-identical to the archive's.
 *
 * Only node: built-ins here: this runs in every restore_command call.
 */

import { createHash, randomBytes } from 'node:crypto';
import { copyFile, open, readFile, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SPOOL_DIR_NAME = '.pgbk-spool';
export const WANT_FILE = '.want.json';
export const WORKER_PID_FILE = '.worker.pid';
export const WORKER_LOG_FILE = '.worker.log';

export interface SpoolSidecar {
  readonly server: string;
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** What the newest wal-fetch asked for: the worker prefetches the `count` segments after `name`. */
export interface SpoolWant {
  readonly server: string;
  readonly name: string;
  readonly segSize: number;
  readonly count: number;
  readonly at: string;
}

/** `<pgdata>/.pgbk-spool` for DEST = `<pgdata>/pg_wal/RECOVERYXLOG` (resolved against cwd). */
export function defaultSpoolDir(dest: string, cwd: string): string {
  return path.join(path.dirname(path.dirname(path.resolve(cwd, dest))), SPOOL_DIR_NAME);
}

export function sha256Hex(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function tempName(dir: string, name: string): string {
  return path.join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

async function unlinkQuietly(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch {
    // gone already
  }
}

async function readSidecar(spool: string, name: string): Promise<SpoolSidecar | undefined> {
  try {
    const o = JSON.parse(await readFile(path.join(spool, `${name}.json`), 'utf8')) as Partial<SpoolSidecar>;
    if (typeof o.server === 'string' && o.name === name && typeof o.size === 'number' && typeof o.sha256 === 'string') {
      return { server: o.server, name, size: o.size, sha256: o.sha256 };
    }
  } catch {
    // absent or being written: not spooled
  }
  return undefined;
}

/** Write `buf` to `dest` atomically: a temp file in DEST's directory, then rename. */
export async function writeDestAtomic(dest: string, buf: Buffer): Promise<void> {
  const tmp = tempName(path.dirname(dest), path.basename(dest));
  try {
    await writeFile(tmp, buf, { mode: 0o600, flag: 'wx' });
    await rename(tmp, dest);
  } catch (err) {
    await unlinkQuietly(tmp);
    throw err;
  }
}

export type SpoolTake = 'taken' | 'absent' | 'discarded';

/**
 * Hand a spooled file over to `dest` if it is there, complete and verified. 'discarded' means a
 * spooled copy existed but failed verification (it is deleted; the caller reads the archive).
 */
export async function takeFromSpool(spool: string, server: string, name: string, dest: string): Promise<SpoolTake> {
  const sidecar = await readSidecar(spool, name);
  if (sidecar === undefined) return 'absent';
  const file = path.join(spool, name);
  let ok = false;
  try {
    const buf = await readFile(file);
    ok = sidecar.server === server && buf.length === sidecar.size && sha256Hex(buf) === sidecar.sha256;
    if (ok) {
      try {
        await rename(file, dest);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        const tmp = tempName(path.dirname(dest), path.basename(dest));
        await copyFile(file, tmp);
        await rename(tmp, dest);
      }
    }
  } catch {
    ok = false;
  }
  await unlinkQuietly(file);
  await unlinkQuietly(path.join(spool, `${name}.json`));
  return ok ? 'taken' : 'discarded';
}

/** Publish a verified archive file into the spool. Fails (ENOENT) if the spool was removed. */
export async function putInSpool(spool: string, server: string, name: string, buf: Buffer): Promise<void> {
  const sidecar: SpoolSidecar = { server, name, size: buf.length, sha256: sha256Hex(buf) };
  const dataTmp = tempName(spool, name);
  const metaTmp = tempName(spool, `${name}.json`);
  try {
    await writeFile(dataTmp, buf, { mode: 0o600, flag: 'wx' });
    await writeFile(metaTmp, JSON.stringify(sidecar), { mode: 0o600, flag: 'wx' });
    await rename(dataTmp, path.join(spool, name));
    await rename(metaTmp, path.join(spool, `${name}.json`));
  } finally {
    await unlinkQuietly(dataTmp);
    await unlinkQuietly(metaTmp);
  }
}

export async function isSpooled(spool: string, name: string): Promise<boolean> {
  return (await readSidecar(spool, name)) !== undefined;
}

/**
 * Delete spooled segments PostgreSQL has gone past (name sorts before `name` on the same
 * timeline, or any older timeline's segment before it) and temp files of a worker that died.
 */
export async function pruneSpool(spool: string, keepFrom: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(spool);
  } catch {
    return;
  }
  for (const n of names) {
    const base = n.endsWith('.json') ? n.slice(0, -5) : n;
    if (/^[0-9A-F]{24}$/.test(base) && base.slice(8) < keepFrom.slice(8)) {
      await unlinkQuietly(path.join(spool, n));
    } else if (n.includes('.tmp-')) {
      const pid = Number(/\.tmp-(\d+)-/.exec(n)?.[1]);
      if (!isAlive(pid)) await unlinkQuietly(path.join(spool, n));
    }
  }
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readWant(spool: string): Promise<SpoolWant | undefined> {
  try {
    const o = JSON.parse(await readFile(path.join(spool, WANT_FILE), 'utf8')) as Partial<SpoolWant>;
    if (typeof o.server === 'string' && typeof o.name === 'string' && typeof o.segSize === 'number' && typeof o.count === 'number') {
      return { server: o.server, name: o.name, segSize: o.segSize, count: o.count, at: String(o.at) };
    }
  } catch {
    // none yet
  }
  return undefined;
}

export async function writeWant(spool: string, want: SpoolWant): Promise<void> {
  const tmp = tempName(spool, WANT_FILE);
  await writeFile(tmp, JSON.stringify(want), { mode: 0o600 });
  await rename(tmp, path.join(spool, WANT_FILE));
}

/** PID of a live prefetch worker for this spool, if any. */
export async function liveWorker(spool: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path.join(spool, WORKER_PID_FILE), 'utf8')).trim());
    return isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Claim the worker role: exclusive create of the pid file (a dead holder's file is replaced). */
export async function claimWorker(spool: string): Promise<boolean> {
  const file = path.join(spool, WORKER_PID_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      if ((await liveWorker(spool)) !== undefined) return false;
      await unlinkQuietly(file);
    }
  }
  return false;
}

export async function releaseWorker(spool: string): Promise<void> {
  try {
    const pid = Number((await readFile(path.join(spool, WORKER_PID_FILE), 'utf8')).trim());
    if (pid === process.pid) await unlinkQuietly(path.join(spool, WORKER_PID_FILE));
  } catch {
    // already gone
  }
}

/** Stop the worker (by the PID it recorded) and remove the spool: recovery has ended. */
export async function removeSpool(spool: string): Promise<void> {
  const pid = await liveWorker(spool);
  if (pid !== undefined && pid !== process.pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
  }
  await rm(spool, { recursive: true, force: true, maxRetries: 3 });
}
