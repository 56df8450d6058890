/**
 * restore_command with a shell fast path: PostgreSQL runs restore_command once per WAL segment
 * through /bin/sh, and a Node start costs far more than replaying a segment, so the common case —
 * the prefetch worker already spooled the segment — must not start Node:
 *
 *   (wait up to ~3 s while .pgbk-spool/%f.pending says the worker is writing %f, then)
 *   if command exec 3< .pgbk-spool/%f; then              # open the spooled file (no program started)
 *     c=; read -r c < .pgbk-spool/%f.ck                   # its sidecar, while NAME is still there
 *     mv -f .pgbk-spool/%f %p & m=$!; k=$(stat -c '%d %i %s %.9Y' - <&3)   # rename and stat side by side
 *     if wait $m && { [ %p -ef /dev/fd/3 ] || cmp -s - %p <&3; } &&
 *        read -r b < /proc/sys/kernel/random/boot_id && [ "$b $k" = "$c" ]; then exit 0; fi
 *     rm -f %p .pgbk-spool/%f.ck; echo "… failed its check …" >&2
 *   fi
 *   exec NODE CLI wal-fetch --config CONFIG SERVER %f %p
 *
 * Why this is safe (see spool.ts for how spooled files are made, and what their identity proves):
 * - `.pgbk-spool` is relative: PostgreSQL runs restore_command in its data directory, so this is
 *   always this cluster's own private spool, never one of a moved or copied directory.
 * - The rename is atomic; after it, the only copy is PostgreSQL's %p. The file opened before the
 *   rename is stat'ed through that descriptor (one small program, ~1–2 ms, while mv runs: it used
 *   to be a `cksum` reading all 16 MiB, ~10 ms of PostgreSQL's wait per segment): device, inode,
 *   size and modification time (nanoseconds) must be what the worker recorded right after writing
 *   the verified bytes, in this boot of the machine. `[ %p -ef /dev/fd/3 ]` (same device and inode)
 *   proves that the file checked is the one now at %p; when it is not (pg_wal on another
 *   filesystem, where mv copies, or a file swapped in between) `cmp` proves %p holds the same bytes
 *   as the checked file. A failed rename, a different identity or boot, different bytes, a missing
 *   sidecar or a missing stat/cmp program removes %p and falls through to Node. So the fast path
 *   hands over a file only if it is the file written from bytes verified against the archive's
 *   sha256 and not written since, and any failure of it only costs a Node start.
 * - The stat may run after the rename (side by side): rename changes the inode's ctime, never its
 *   device, inode number, size or mtime, so ctime is not compared. What ctime would add — a
 *   `touch` back to the recorded mtime — is a deliberate act of the cluster's owner.
 * - A hit starts three programs (sh, then mv and stat at once) and no more: PostgreSQL's replay
 *   waits for them, and on a busy 2-core host a program start costs ~2-10 ms. So the hit leaves
 *   NAME.ck behind; the worker prunes sidecars of consumed segments (pruneSpool) and
 *   recovery_end_command removes the spool. A leftover sidecar is harmless: the open of NAME
 *   comes first and misses once NAME is consumed, and a NAME spooled again brings its own sidecar
 *   (published before NAME).
 * - Only segment names are ever spooled (the worker never writes .history/.partial/.backup), so
 *   for those names the open misses and Node answers, with its exit codes: 1 = not in the archive,
 *   255 = stop recovery. The fast path itself exits 0 or hands over to Node (`exec` keeps Node's
 *   status); it never exits 1, so it cannot end recovery early.
 */

import { commandLine, type RestoreCommandParts } from '../pg/recovery-conf.js';
import { BOOT_ID_FILE, CHECK_SUFFIX, PENDING_SUFFIX, SPOOL_DIR_NAME } from './spool.js';

export function buildFastRestoreCommand(parts: RestoreCommandParts): string {
  return buildFastPathAround(commandLine([parts.node, parts.cli, 'wal-fetch', '--config', parts.configPath, ...(parts.extraArgs ?? []), parts.server]));
}

/**
 * The fast path in front of any Node fallback (`node` = that command, quoted by commandLine, to
 * which ` %f %p` is appended): restore --remote uses it with `pgbk wal-fetch --from ssh://…`.
 */
export function buildFastPathAround(node: string): string {
  const s = `${SPOOL_DIR_NAME}/%f`;
  const check = `${s}${CHECK_SUFFIX}`;
  const pending = `${s}${PENDING_SUFFIX}`;
  // While the worker is writing exactly this segment (NAME.pending exists), wait for it a little
  // (at most ~3 s) rather than start Node: a Node start costs more than the rest of the write.
  // `command exec 3<` opens the spooled file without exiting the shell when it is absent; its
  // sidecar is read next, while NAME is still in the spool: a writer that spools NAME again
  // (spool.ts: only while NAME is absent) may replace the sidecar once the rename has taken NAME
  // away, and a sidecar read after that would name the new copy, not the opened one (CI saw such a
  // failed check, safe but a Node start). The
  // rename (in the background) and the stat of the opened file then run side by side, and
  // `%p -ef /dev/fd/3` proves the file checked is the file PostgreSQL gets (else, e.g. pg_wal on
  // another filesystem where mv copies, cmp compares %p with the checked file). PostgreSQL
  // replaces %f, %p, %r and %% in restore_command (and rejects other placeholders): stat's
  // format is written with %%.
  return (
    `n=0; while ! { command exec 3< ${s}; } 2>/dev/null; do ` +
    `if [ -f ${pending} ] && [ $n -lt 150 ]; then n=$((n+1)); sleep 0.02; else n=miss; break; fi; done; ` +
    `if [ $n != miss ]; then ` +
    `c=; { read -r c < ${check}; } 2>/dev/null; ` +
    `mv -f ${s} %p 2>/dev/null & m=$!; k=$(stat -c "%%d %%i %%s %%.9Y" - <&3 2>/dev/null); ` +
    `if wait $m && { [ %p -ef /dev/fd/3 ] || cmp -s - %p <&3; } && { read -r b < ${BOOT_ID_FILE}; } 2>/dev/null && [ "$b $k" = "$c" ]; then exit 0; fi; ` +
    `rm -f %p ${check}; echo "pgbk wal-fetch: the spooled copy of %f failed its check; reading the archive" >&2; fi; ` +
    `exec 3<&-; exec ${node} %f %p`
  );
}
