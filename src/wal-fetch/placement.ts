/**
 * Placement: the prefetch workers put each verified segment straight into the restored cluster's
 * pg_wal, where PostgreSQL reads it in place, as it reads its own WAL. restore_command's fast path
 * (fast-path.ts) answers "not in the archive" (exit 1) for a placed segment, and PostgreSQL then
 * opens pg_wal/NAME (PostgreSQL 15, XLogFileReadAnyTLI: the archive first, then pg_wal, for every
 * timeline). That saves PostgreSQL's wait for the programs that move a spooled file (`mv` and
 * `stat`) and its own handling of a restored file (RECOVERYXLOG renamed into place, fsynced),
 * which together were most of what replay through wal-fetch cost over replay from a local pg_wal.
 * Where a segment cannot be placed it is spooled (spool.ts), as before.
 *
 * Why PostgreSQL reads the right bytes (the fast path's side is in fast-path.ts):
 * - The bytes are written by `fill` (verified against the archive's sha256 as they are decoded)
 *   into a temp file in pg_wal, made durable (fdatasync) and given a fixed modification time T
 *   (whole seconds, before now), and appear as pg_wal/NAME only by link(2), which never replaces
 *   anything: an existing pg_wal/NAME (PostgreSQL's own, a backup's, a file restored meanwhile)
 *   is left alone and the caller spools instead ('exists').
 * - pg_wal is fsynced after the link, and only then NAME.link — a second hard link to the same
 *   file, in the private spool — is published. The fast path answers exit 1 only when pg_wal/NAME
 *   *is* that file (`[ pg_wal/NAME -ef .pgbk-spool/NAME.link ]`: same device and inode) and still
 *   has modification time T (compared with NAME.ref, which has T too): a file put there by anyone
 *   else, or written since (any write moves the time to now), is never handed over that way. So a
 *   machine crash cannot leave PostgreSQL with a placed segment that is not on disk: it was
 *   durable before PostgreSQL could be told to read it (PostgreSQL's own durable_rename of a
 *   restored file gives the same).
 * - The archive_status/NAME.done PostgreSQL creates for a restored file is created here too (before
 *   the link), so the file is never archived again from the restored cluster and PostgreSQL
 *   removes it at a restartpoint, or at promotion (other timelines' segments after the switch).
 * - Nothing ever deletes or replaces pg_wal/NAME once linked: only PostgreSQL removes segments,
 *   older than its restartpoint. After exit 1, pg_wal/NAME is there when PostgreSQL opens it: a
 *   missing file there would look like the end of the archive.
 */

import { link, open, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { linkNoClobber, tempPathFor } from '../lib/atomic.js';
import { isSameProcessAlive } from '../lib/process-identity.js';
import { isSegmentName } from '../pg/wal-name.js';
import { exists, LINK_SUFFIX, putInSpoolWith, REF_SUFFIX } from './spool.js';

/** A temp file of placeInPgWal in pg_wal (lib/atomic tempPathFor's name; PostgreSQL ignores it). */
const PG_WAL_TEMP_RE = /^\.[0-9A-F]{24}\.tmp-(\d+)-[0-9a-f]+$/;

/** Place a verified segment in pg_wal (see the top of this file); 'exists' when pg_wal has NAME. */
export async function placeInPgWal(spool: string, pgWal: string, name: string, fill: (fd: number) => Promise<number>): Promise<'placed' | 'exists'> {
  if (!isSegmentName(name)) throw new Error(`not a segment name: ${name}`);
  const target = path.join(pgWal, name);
  if (await exists(target)) return 'exists';
  const tmp = tempPathFor(target);
  const spoolLink = path.join(spool, `${name}${LINK_SUFFIX}`);
  const ref = path.join(spool, `${name}${REF_SUFFIX}`);
  const done = path.join(pgWal, 'archive_status', `${name}.done`);
  let madeDone = false;
  let inPgWal = false;
  try {
    // T: whole seconds (exact in every file system's timestamps and in utimes' double), and in the
    // past, so that any later write (which stamps "now") differs from it.
    const t = Math.floor(Date.now() / 1000) - 2;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      const length = await fill(fh.fd);
      const st = await fh.stat();
      // The size the file has must be what was verified: a short write is never placed.
      if (st.size !== length) throw new Error(`placed ${name} is ${st.size} bytes, expected ${length}`);
      await fh.datasync();
      await fh.utimes(t, t);
    } finally {
      await fh.close();
    }
    await rm(spoolLink, { force: true });
    await rm(ref, { force: true });
    const refTmp = tempPathFor(ref);
    try {
      await writeFile(refTmp, '', { mode: 0o600, flag: 'wx' });
      await utimes(refTmp, t, t);
      await rename(refTmp, ref);
    } finally {
      await rm(refTmp, { force: true });
    }
    try {
      await writeFile(done, '', { mode: 0o600, flag: 'wx' });
      madeDone = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // recovery_end_command removes the spool when recovery ends: from then on PostgreSQL writes
    // pg_wal itself and cleans up the old timeline's segments, so nothing more is put there.
    if (!(await exists(spool))) throw new Error(`${spool} was removed: recovery has ended`);
    // Linked in only if absent, then pg_wal fsynced; the temp name is gone either way.
    if ((await linkNoClobber(tmp, target)) === 'exists') return 'exists';
    inPgWal = true;
    // Published last: from here on the fast path sends PostgreSQL to pg_wal/NAME.
    await link(target, spoolLink);
    return 'placed';
  } finally {
    await rm(tmp, { force: true });
    if (!inPgWal) {
      await rm(ref, { force: true });
      if (madeDone) await rm(done, { force: true });
    }
  }
}

/**
 * Whether a worker may place segments into `pgWal` for this spool: pg_wal of a data directory
 * (it has archive_status/) on the spool's file system (NAME.link is a hard link).
 */
export async function canPlaceInPgWal(spool: string, pgWal: string): Promise<boolean> {
  try {
    const [w, s, a] = await Promise.all([stat(pgWal), stat(spool), stat(path.join(pgWal, 'archive_status'))]);
    return w.isDirectory() && s.isDirectory() && a.isDirectory() && w.dev === s.dev;
  } catch {
    return false;
  }
}

/** Remove placeInPgWal's temp files in pg_wal whose writer is gone (a worker that was killed). */
export async function prunePgWalTemps(pgWal: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(pgWal);
  } catch {
    return;
  }
  for (const n of names) {
    const pid = PG_WAL_TEMP_RE.exec(n)?.[1];
    if (pid !== undefined && !isSameProcessAlive({ pid: Number(pid) })) await rm(path.join(pgWal, n), { force: true });
  }
}

/**
 * Put a verified segment where the fast path takes it: placed in `pgWal` when given, else — or
 * when pg_wal already has a file of that name — spooled (spool.ts putInSpoolWith).
 */
export async function prefetchInto(spool: string, pgWal: string | undefined, name: string, fill: (fd: number) => Promise<number>): Promise<void> {
  if (pgWal !== undefined && (await placeInPgWal(spool, pgWal, name, fill)) === 'placed') return;
  await putInSpoolWith(spool, name, fill);
}
