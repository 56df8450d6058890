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
 *  - It names the exact file that was pushed: device, inode, size and modification time (ns) of
 *    the file as opened for reading, the same string GNU `stat -c %d:%i:%s:%.9Y` prints. A
 *    segment recycled by PostgreSQL, a re-initialised cluster reusing the name, or a file changed
 *    since, does not match; a torn, empty or garbled marker does not match either. Any mismatch
 *    falls through to the real client, which asks the worker (that checks with the backup host).
 *  - Markers are not fsynced: losing one in a crash only costs a real push (a duplicate: ok).
 */

import type { BigIntStats } from 'node:fs';
import { readdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
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

/** Publish the marker atomically (rename), so the shell never reads half of one. */
export async function writeMarker(dir: string, name: string, stamp: string): Promise<void> {
  const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
  await writeFile(tmp, `${stamp}\n`, { mode: 0o600 });
  await rename(tmp, path.join(dir, name));
}

/**
 * Remove the markers of files no longer waiting to be archived. `listedMarkers` must have been
 * read before `stillReady` was listed: a marker is only written for a file already `.ready`, so
 * in that order a marker missing from `stillReady` belongs to a file PostgreSQL is done with.
 */
export async function dropMarkers(dir: string, listedMarkers: readonly string[], stillReady: ReadonlySet<string>): Promise<void> {
  for (const m of listedMarkers) {
    if (m.startsWith('.') || stillReady.has(m)) continue;
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
 * `sh -c` in the data directory, so %p is pg_wal/NAME relative to it and `stat` sees that file.
 */
export function fastPathArchiveCommand(c: FastPathCommand): string {
  const tries = Math.max(1, Math.round(c.waitSeconds / POLL_SECONDS));
  return [
    `m=${shArg(c.markers)}/%f; n=0;`,
    `while [ -S ${shArg(c.socket)} ] && [ $n -lt ${tries} ]; do`,
    `if { read -r s < "$m"; } 2>/dev/null && [ "$s" = "$(stat -c %%d:%%i:%%s:%%.9Y -- %p)" ]; then exit 0; fi;`,
    `sleep ${POLL_SECONDS}; n=$((n+1));`,
    'done;',
    `exec ${c.fallback.map(shArg).join(' ')} %p`,
  ].join(' ');
}
