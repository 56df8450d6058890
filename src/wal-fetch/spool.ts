/**
 * The prefetch spool of `pgbk wal-fetch`: `<data directory>/.pgbk-spool`, where a long-lived
 * background worker (prefetch-worker.ts) keeps the next WAL segments, decompressed and verified,
 * before PostgreSQL asks for them. restore_command first tries a shell fast path (fast-path.ts)
 * that hands a spooled segment over with one rename, without starting Node; only a miss runs
 * `node cli.js wal-fetch`. `recovery_end_command` removes the spool when recovery ends.
 *
 * Why a spooled file can be trusted (threat model):
 * - It is created only by putInSpool, from bytes readArchivedWal has just decompressed and checked
 *   against the archive's SHA256SUMS, and it appears under its final name only by rename(2) from a
 *   temp name (`.NAME.tmp-PID-RAND`, which PostgreSQL never asks for): a half-written file is never
 *   visible as NAME. Archived files never change content under a name (the archive refuses to
 *   overwrite), so every verified copy of NAME is byte-identical.
 * - Beside it, NAME.ck records which file that is: `BOOT_ID DEV INODE SIZE MTIME` — the kernel's
 *   boot id and what fstat(2) says of the temp file once the verified bytes are written (device,
 *   inode number, size, modification time in nanoseconds), exactly as `stat -c '%d %i %s %.9Y'`
 *   prints them — published *before* NAME. The fast path opens NAME, renames it to %p (from then on
 *   only PostgreSQL's own pg_wal holds it), stats the open descriptor, and hands it over only if
 *   the boot id and all four values are the same; any difference, a missing or unreadable sidecar
 *   removes %p and falls back to Node, which reads the archive (see "What the identity proves").
 * - What the identity proves (session 18: it replaced a `cksum` of the whole file, which cost
 *   PostgreSQL ~7 ms of its wait per segment and the worker a read-back of every segment). Either
 *   check can only prove "this is the file the worker wrote": the bytes were checked against the
 *   archive's sha256 before they were written, not after.
 *   - Any write, truncation or extension through the file system after the worker's fstat moves
 *     the modification time (and a truncation or extension the size). Linux ≥ 6.13 gives a change
 *     that follows a stat of the inode a fine-grained, strictly newer timestamp ("multigrain"
 *     timestamps: tmpfs, ext4, xfs, btrfs), so even a write in the same clock tick as the worker's
 *     fstat is seen; older kernels miss a write in the rest of that tick (≤ ~4 ms after the
 *     worker's last write, while the file still has its private temp name). A CRC-32, on the other
 *     hand, misses any change that keeps the CRC (test: fetch-fast-path).
 *   - A replaced file (another file renamed or copied over NAME, `cp -p` included) has another
 *     inode. Not seen: a file that gets the same inode number back (ext4 reuses freed numbers,
 *     tmpfs does not) and the same coarse timestamp, i.e. NAME deleted and a new 16 MiB file put in
 *     its place within one clock tick of the worker's write.
 *   - A crash of the machine: the boot id changes, so nothing spooled before it is handed over (the
 *     spool is not fsynced; after a power loss a file may keep its name and size but not its data).
 *   - Not detected: bytes changed below the file system (a disk or RAM error after the write), and
 *     a deliberate `touch -d` back to the recorded nanosecond by the cluster's own OS user. The
 *     first is what PostgreSQL's own pg_wal is exposed to in crash recovery too, and pgBackRest's
 *     and Barman's restore spools hand files over with no check at all; the old `cksum` caught it
 *     only if the page was evicted and read back from a bad disk in the seconds between the worker
 *     and PostgreSQL. The second is the owner, who can write pg_wal directly anyway.
 * - The spool sits inside the data directory (0700, owned by the cluster's OS user) and is itself
 *   created 0700 by that user; restore_command names it relatively (PostgreSQL runs it in the data
 *   directory), so a moved or copied data directory never reads another cluster's spool. Only that
 *   user or root can put files there, and they can equally write pg_wal or the relation files:
 *   the identity check guards against accidents, not against the cluster's own owner. `pgbk
 *   restore` deletes any `.pgbk-spool` a backup may have carried.
 * - Linux only: without /proc's boot id nothing is spooled (putInSpool fails) and every segment
 *   comes through Node.
 *
 * Only node: built-ins and lib/process-identity here: the Node fallback of restore_command loads
 * this. Placement in pg_wal is placement.ts.
 */

import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readFile, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatPidFile, isSameProcessAlive, parsePidFile, processIdentity, type ProcessIdentity } from '../lib/process-identity.js';

export const SPOOL_DIR_NAME = '.pgbk-spool';
/** Sidecar suffix: NAME.ck holds NAME's identity (`BOOT_ID DEV INODE SIZE MTIME`, spoolIdentity). */
export const CHECK_SUFFIX = '.ck';
/** Held (created exclusively) while one writer publishes NAME and NAME.ck: see putInSpoolWith. */
export const PUBLISH_SUFFIX = '.publishing';
/** Marker NAME.pending: the worker is reading/writing NAME right now (the fast path may wait). */
export const PENDING_SUFFIX = '.pending';
/**
 * Placement in pg_wal (placement.ts placeInPgWal): NAME.link is a hard link to the file the worker put at
 * pg_wal/NAME, NAME.ref an empty file with that file's modification time, NAME.used is left by the
 * fast path once it told PostgreSQL to read pg_wal/NAME.
 */
export const LINK_SUFFIX = '.link';
export const REF_SUFFIX = '.ref';
export const USED_SUFFIX = '.used';
export const WANT_FILE = '.want.json';
export const WORKER_PID_FILE = '.worker.pid';
export const WORKER_LOG_FILE = '.worker.log';

const SEGMENT_RE = /^[0-9A-F]{24}$/;

/** What the newest Node wal-fetch served: the worker prefetches the `count` segments after `name`. */
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

/** Whether `file` exists (lstat: a symlink counts as itself). */
export async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
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

/**
 * Write `dest` atomically from `fill`, which writes the content into the open temp file (e.g. a
 * decompressor writing straight into it) and returns its length.
 */
export async function writeDestAtomicWith(dest: string, fill: (fd: number) => Promise<number>): Promise<number> {
  const tmp = tempName(path.dirname(dest), path.basename(dest));
  try {
    const fh = await open(tmp, 'wx', 0o600);
    let n: number;
    try {
      n = await fill(fh.fd);
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
    return n;
  } catch (err) {
    await unlinkQuietly(tmp);
    throw err;
  }
}

/** Where Linux publishes the id of the current boot (a new one after every restart of the machine). */
export const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

let bootIdCache: string | undefined;

/** The kernel's boot id, as the fast path's `read -r b < BOOT_ID_FILE` sees it. */
export async function bootId(): Promise<string> {
  bootIdCache ??= (await readFile(BOOT_ID_FILE, 'utf8')).trim();
  if (!/^[0-9a-f-]{36}$/.test(bootIdCache)) throw new Error(`${BOOT_ID_FILE}: unexpected ${JSON.stringify(bootIdCache)}`);
  return bootIdCache;
}

/**
 * The sidecar line for the file open as `fh`: `BOOT_ID DEV INODE SIZE MTIME`, the last four as
 * `stat -c '%d %i %s %.9Y'` prints them (decimal device number, seconds.nanoseconds).
 */
export async function spoolIdentity(fh: FileHandle): Promise<{ readonly line: string; readonly size: number }> {
  const st = await fh.stat({ bigint: true });
  const ns = st.mtimeNs;
  const mtime = `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
  return { line: `${await bootId()} ${st.dev} ${st.ino} ${st.size} ${mtime}`, size: Number(st.size) };
}

/**
 * Publish a verified archive file into the spool: data and sidecar to temp names, the sidecar
 * renamed first, the data last (NAME visible ⇒ NAME.ck visible). Fails (ENOENT) once the spool
 * was removed.
 */
export async function putInSpool(spool: string, name: string, buf: Buffer): Promise<void> {
  await putInSpoolWith(spool, name, bufferFill(buf));
}

/** A `fill` for putInSpoolWith / prefetchInto that writes `buf` whole. */
export function bufferFill(buf: Buffer): (fd: number) => Promise<number> {
  return async (fd) => {
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    return buf.length;
  };
}

/**
 * putInSpool with the content written by `fill` into the open temp file (the prefetch worker's
 * decompressor writes straight into it: no 16 MiB Buffer per segment); `fill` returns the length
 * it wrote, and may throw to publish nothing. The sidecar is the file's identity once `fill` is
 * done (spoolIdentity); nothing is read back. rename(2) keeps device, inode, size and mtime.
 */
export async function putInSpoolWith(spool: string, name: string, fill: (fd: number) => Promise<number>): Promise<void> {
  if (!SEGMENT_RE.test(name)) throw new Error(`not a segment name: ${name}`);
  const dataTmp = tempName(spool, name);
  const checkTmp = tempName(spool, `${name}${CHECK_SUFFIX}`);
  try {
    const fh = await open(dataTmp, 'wx', 0o600);
    let identity: { readonly line: string; readonly size: number };
    let length: number;
    try {
      length = await fill(fh.fd);
      identity = await spoolIdentity(fh);
    } finally {
      await fh.close();
    }
    // The size the file has must be what was verified: a short write is never published.
    if (identity.size !== length) throw new Error(`spooled ${name} is ${identity.size} bytes, expected ${length}`);
    await writeFile(checkTmp, `${identity.line}\n`, { mode: 0o600, flag: 'wx' });
    // Two writers may spool the same segment (the worker, and a Node fallback spooling the next
    // one). Their renames could interleave into one's sidecar beside the other's file, and a
    // second publisher after the first would replace the sidecar while the fast path checks the
    // first's file: either is refused (safely, but at the cost of a Node start). So one publisher
    // at a time, and none while NAME is spooled: the other drops its identical copy.
    const lock = path.join(spool, `${name}${PUBLISH_SUFFIX}`);
    let held: FileHandle;
    try {
      held = await open(lock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw err;
    }
    try {
      if (await exists(path.join(spool, name))) return;
      await rename(checkTmp, path.join(spool, `${name}${CHECK_SUFFIX}`));
      await rename(dataTmp, path.join(spool, name));
    } finally {
      await held.close();
      await unlinkQuietly(lock);
    }
  } finally {
    await unlinkQuietly(dataTmp);
    await unlinkQuietly(checkTmp);
  }
}

/**
 * Remove a spooled segment and its sidecar, and forget a placement of it (its link and reference:
 * the fast path then no longer names pg_wal/NAME; whatever PostgreSQL restores replaces it).
 */
export async function discardSpooled(spool: string, name: string): Promise<void> {
  for (const suffix of ['', CHECK_SUFFIX, LINK_SUFFIX, REF_SUFFIX]) await unlinkQuietly(path.join(spool, `${name}${suffix}`));
}

/**
 * What the spool holds now, by segment name: spooled files, placements (NAME.link) and placements
 * the fast path handed over (NAME.used); undefined when the spool does not exist.
 */
async function listSpool(spool: string): Promise<{ readonly spooled: Set<string>; readonly linked: Set<string>; readonly used: Set<string> } | undefined> {
  let names: string[];
  try {
    names = await readdir(spool);
  } catch {
    return undefined;
  }
  const spooled = new Set<string>();
  const linked = new Set<string>();
  const used = new Set<string>();
  for (const n of names) {
    if (SEGMENT_RE.test(n)) spooled.add(n);
    else if (n.endsWith(LINK_SUFFIX) && SEGMENT_RE.test(n.slice(0, -LINK_SUFFIX.length))) linked.add(n.slice(0, -LINK_SUFFIX.length));
    else if (n.endsWith(USED_SUFFIX) && SEGMENT_RE.test(n.slice(0, -USED_SUFFIX.length))) used.add(n.slice(0, -USED_SUFFIX.length));
  }
  return { spooled, linked, used };
}

/**
 * The spool as a prefetcher sees it: `waiting` — spooled files and placements the fast path has not
 * handed over (a name that leaves this set was consumed); `held` — every name spooled or placed (not
 * to be fetched again). Undefined when the spool does not exist.
 */
export async function spoolView(spool: string): Promise<{ readonly waiting: Set<string>; readonly held: Set<string> } | undefined> {
  const state = await listSpool(spool);
  if (state === undefined) return undefined;
  return {
    waiting: new Set([...state.spooled, ...[...state.linked].filter((n) => !state.used.has(n))]),
    held: new Set([...state.spooled, ...state.linked]),
  };
}

/**
 * Delete spooled segments (and sidecars) before `keepFrom`'s position, on any timeline — PostgreSQL
 * only moves forward — and temp files of a writer that died.
 */
export async function pruneSpool(spool: string, keepFrom: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(spool);
  } catch {
    return;
  }
  for (const n of names) {
    const suffix = [CHECK_SUFFIX, PENDING_SUFFIX, PUBLISH_SUFFIX, LINK_SUFFIX, REF_SUFFIX, USED_SUFFIX].find((x) => n.endsWith(x)) ?? '';
    const base = n.slice(0, n.length - suffix.length);
    if (SEGMENT_RE.test(base) && base.slice(8) < keepFrom.slice(8)) {
      await unlinkQuietly(path.join(spool, n));
    } else if (n.includes('.tmp-')) {
      const pid = Number(/\.tmp-(\d+)-/.exec(n)?.[1]);
      if (!isAlive(pid)) await unlinkQuietly(path.join(spool, n));
    }
  }
}

/**
 * Create the spool (0700) or accept an existing one only if it is a real directory of ours that
 * nobody else can enter; otherwise prefetching is off (false) and every segment comes from Node.
 */
export async function ensureSpoolDir(spool: string): Promise<boolean> {
  try {
    await mkdir(spool, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  }
  try {
    const st = await lstat(spool);
    const uid = process.getuid?.();
    return st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** A temp file's writer (its pid is in the name; no start recorded there). */
function isAlive(pid: number): boolean {
  return isSameProcessAlive({ pid });
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

/**
 * PID of a live prefetch worker for this spool, if any. On Linux the PID must still run
 * prefetch-worker.js (a recycled PID of another process is not "our worker").
 */
export async function liveWorker(spool: string): Promise<number | undefined> {
  let recorded: ProcessIdentity | undefined;
  try {
    recorded = parsePidFile(await readFile(path.join(spool, WORKER_PID_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (recorded === undefined || !isSameProcessAlive(recorded)) return undefined;
  const pid = recorded.pid;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('prefetch-worker') ? pid : undefined;
  } catch {
    return process.platform === 'linux' ? undefined : pid;
  }
}

/** Claim the worker role: exclusive create of the pid file (a dead holder's file is replaced). */
export async function claimWorker(spool: string): Promise<boolean> {
  const file = path.join(spool, WORKER_PID_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(formatPidFile(processIdentity()));
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
    const pid = parsePidFile(await readFile(path.join(spool, WORKER_PID_FILE), 'utf8'))?.pid;
    if (pid === process.pid) await unlinkQuietly(path.join(spool, WORKER_PID_FILE));
  } catch {
    // already gone
  }
}

/**
 * Stop the worker (SIGTERM to the PID it recorded, if that PID still runs the worker) and remove
 * the spool: recovery has ended. A worker that misses the signal exits on its own once the spool
 * is gone.
 */
export async function removeSpool(spool: string): Promise<void> {
  const pid = await liveWorker(spool);
  if (pid !== undefined && pid !== process.pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
  }
  await rm(spool, { recursive: true, force: true, maxRetries: 5 });
}
