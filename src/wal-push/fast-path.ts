/**
 * The shell fast path of wal-push over SSH: an archive_command that answers PostgreSQL without
 * starting Node when the worker has already made the segment durable on the backup host.
 *
 * Why: PostgreSQL runs archive_command once per 16 MiB segment, and even the tiny Node client
 * costs ~100 ms of CPU per start — on a small database host that CPU is taken from the
 * transactions (it was half of all the CPU archiving used). The worker pushes every `.ready` file
 * as soon as it appears; once the backup host has answered "durable" for it, the worker writes an
 * acknowledgement marker. The archive_command is a few lines of sh that wait briefly for that
 * marker, compare it with the file PostgreSQL names, and exit 0 — or run the real client.
 *
 * Trust model (as for the restore spool, src/restore/spool.ts):
 *  - A marker is written only after wal-receive reported the file durable in the archive (after
 *    every archive check: name, size, page magic, system identifier, duplicate/conflict). No
 *    other code path writes one, so a marker never stands for a copy that is not durable.
 *  - It lives in the worker's private runtime directory (mode 0700, owned by the PostgreSQL OS
 *    user): whoever can forge one can equally rewrite pg_wal itself, so it is trusted as much as
 *    the WAL files are.
 *  - It names the exact file that was pushed by its modification time, with shell builtins only:
 *    a pair of files, NAME with an mtime MARKER_MARGIN_NS before the pushed file's and NAME.hi
 *    with one as far after it, so `[ %p -nt NAME ] && [ %p -ot NAME.hi ]` holds only for a file
 *    last written within those 10 µs. A segment is complete and never written again once it is
 *    `.ready`, so a segment recycled by PostgreSQL, a re-initialised cluster reusing the name, or
 *    a file changed since has another mtime; a missing half of the pair does not match either.
 *    NAME also holds "dev:ino:size:mtime" (fileStamp, GNU `stat -c %d:%i:%s:%.9Y`), which the
 *    command printed by earlier releases compares with `stat` of %p: those commands keep working.
 *    Why no `stat` any more: `$(stat …)` forks the shell and starts a program for every segment,
 *    5.6 ms of the archiver's 12.8 ms per segment on this machine kind, where `sh -c 'exit 0'`
 *    alone takes 7.1 ms; the builtin tests cost nothing measurable (bench/RESULTS, session 23).
 *    Node sets times at microsecond resolution only (libuv truncates), hence a window, not the
 *    exact nanosecond; a markers directory on a file system with coarser times makes the test
 *    fail, which only costs the real client.
 *  - A marker lives only while its file is `.ready` (dropMarkers), and a new pair for a name is
 *    written only after the old NAME is removed, so an old NAME and a new NAME.hi never pair up.
 *  - Any mismatch falls through to the real client, which asks the worker (that checks with the
 *    backup host).
 *  - Markers are not fsynced: losing one in a crash only costs a real push (a duplicate: ok).
 */

import type { BigIntStats } from 'node:fs';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { tempPathFor } from '../lib/atomic.js';
import { runtimeDir } from './target.js';

/** Where the worker for `key` writes its acknowledgement markers. */
export function markerDir(key: string): string {
  return path.join(runtimeDir(), `walpush-${key}.acked`);
}

/** "dev:ino:size:mtime" exactly as GNU `stat -c %d:%i:%s:%.9Y FILE` prints it. */
export function fileStamp(st: BigIntStats): string {
  const ns = st.mtimeNs;
  const sec = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${st.dev}:${st.ino}:${st.size}:${sec}.${frac}`;
}

/** The second half of a marker pair: NAME + this, with an mtime just after the pushed file's. */
export const HI_SUFFIX = '.hi';

/**
 * How far before and after the pushed file's mtime the pair's times are set: Node sets times in
 * seconds as a double, which libuv truncates to whole microseconds (up to ~1.2 µs lower than asked).
 */
export const MARKER_MARGIN_NS = 5_000n;

/** Seconds since the epoch for utimes, from nanoseconds (microseconds are exact in a double). */
function utimeSeconds(ns: bigint): number {
  return Number(ns / 1000n) / 1e6;
}

/**
 * Write `text` to `file` atomically (a temp file renamed over it) with mtime `seconds`. Not
 * fsynced (see the top of this file), hence not lib/atomic's writers; its temp name, though.
 */
async function writeTimed(file: string, text: string, seconds: number): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text);
      await fh.utimes(seconds, seconds);
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Publish the marker pair for the pushed file (its fileStamp and mtime as read): the old NAME
 * first removed, then NAME.hi, then NAME, each renamed into place, so the shell never reads half of
 * one nor pairs an old half with a new one.
 */
export async function writeMarker(dir: string, name: string, stamp: string, mtimeNs: bigint): Promise<void> {
  const lo = path.join(dir, name);
  await unlink(lo).catch(() => undefined);
  await writeTimed(lo + HI_SUFFIX, '', utimeSeconds(mtimeNs + MARKER_MARGIN_NS));
  await writeTimed(lo, `${stamp}\n`, utimeSeconds(mtimeNs - MARKER_MARGIN_NS));
}

/**
 * Remove the markers of files no longer waiting to be archived. `listedMarkers` must have been
 * read before `stillReady` was listed: a marker is only written for a file already `.ready`, so
 * in that order a marker missing from `stillReady` belongs to a file PostgreSQL is done with.
 */
export async function dropMarkers(dir: string, listedMarkers: readonly string[], stillReady: ReadonlySet<string>): Promise<void> {
  for (const m of listedMarkers) {
    const name = m.endsWith(HI_SUFFIX) ? m.slice(0, -HI_SUFFIX.length) : m;
    if (m.startsWith('.') || stillReady.has(name)) continue;
    await unlink(path.join(dir, m)).catch(() => undefined);
  }
}

export async function listMarkers(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** Quote for sh, and double every % so PostgreSQL's %p/%f expansion leaves it alone. */
function shArg(s: string): string {
  const quoted = /^[A-Za-z0-9_/.:@=+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
  return quoted.replace(/%/g, '%%');
}

export interface FastPathCommand {
  /** The worker's unix socket: no socket, no worker to wait for. */
  readonly socket: string;
  readonly markers: string;
  /** The real client, without the trailing %p. */
  readonly fallback: readonly string[];
  /** How long to wait for the marker before running the real client. */
  readonly waitSeconds: number;
}

export const POLL_SECONDS = 0.05;

/**
 * The archive_command text (before PostgreSQL's %p/%f expansion). PostgreSQL runs it with
 * `sh -c` in the data directory, so %p is pg_wal/NAME relative to it. Only builtins run until the
 * fallback (dash and bash alike: `-f` first, because bash's `-nt` is true when the second file is
 * missing); `sleep` starts a program, but only while the worker has not yet acknowledged the file.
 */
export function fastPathArchiveCommand(c: FastPathCommand): string {
  const tries = Math.max(1, Math.round(c.waitSeconds / POLL_SECONDS));
  return [
    `m=${shArg(c.markers)}/%f; n=0;`,
    `while [ -S ${shArg(c.socket)} ] && [ $n -lt ${tries} ]; do`,
    `if [ -f "$m" ] && [ %p -nt "$m" ] && [ %p -ot "$m${HI_SUFFIX}" ]; then exit 0; fi;`,
    `sleep ${POLL_SECONDS}; n=$((n+1));`,
    'done;',
    `exec ${c.fallback.map(shArg).join(' ')} %p`,
  ].join(' ');
}
