/**
 * Disk-full errors that say where: ENOSPC (and EDQUOT, a quota) from a write is worth nothing to a
 * DBA as Node words it ("no space left on device, write"). These helpers recognise it and measure
 * the filesystem (statfs) so the caller can name the server, the file and the free space.
 *
 * Leaf module: imports nothing from the rest of pgbk.
 */

import { statfs } from 'node:fs/promises';
import path from 'node:path';

export function isNoSpaceError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export interface FreeSpace {
  /** Bytes an unprivileged writer may still use (f_bavail × f_bsize). */
  readonly free: number;
  readonly total: number;
  /** The directory measured: `target` or its deepest existing ancestor. */
  readonly dir: string;
}

/** statfs of the filesystem holding `target` (a file that may not exist); undefined if that fails. */
export async function freeSpace(target: string): Promise<FreeSpace | undefined> {
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    try {
      const st = await statfs(dir);
      return { free: st.bavail * st.bsize, total: st.blocks * st.bsize, dir };
    } catch {
      if (path.dirname(dir) === dir) return undefined;
    }
  }
}

/** "1.5 MiB" (binary units, one decimal); exact byte counts are printed beside it. */
export function humanBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

/** "0 bytes free of 2.0 MiB (2097152 bytes) on the filesystem holding DIR", or why it is unknown. */
export async function describeFreeSpace(target: string): Promise<string> {
  const fs = await freeSpace(target);
  if (fs === undefined) return `free space unknown (statfs failed for ${target})`;
  return `${humanBytes(fs.free)} free (${fs.free} bytes) of ${humanBytes(fs.total)} on the filesystem holding ${fs.dir}`;
}

/** Attach the file being written to an fs error that lacks it (write(2) errors name no path). */
export function withPath(err: unknown, file: string): unknown {
  if (err instanceof Error && (err as NodeJS.ErrnoException).path === undefined) (err as NodeJS.ErrnoException).path = file;
  return err;
}
