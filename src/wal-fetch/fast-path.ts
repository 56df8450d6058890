/**
 * restore_command with a shell fast path: PostgreSQL runs restore_command once per WAL segment
 * through /bin/sh, and a Node start costs far more than replaying a segment, so the common case —
 * the prefetch worker already spooled the segment — must not start Node:
 *
 *   (wait up to ~3 s while .pgbk-spool/%f.pending says the worker is writing %f, then)
 *   if command exec 3< .pgbk-spool/%f; then              # open the spooled file (no program started)
 *     mv -f .pgbk-spool/%f %p & m=$!; k=$(cksum <&3)    # rename and checksum side by side
 *     if wait $m && { [ %p -ef /dev/fd/3 ] || k=$(cksum < %p); } &&
 *        { read -r c < .pgbk-spool/%f.ck; } && [ "$k" = "$c" ]; then exit 0; fi
 *     rm -f %p .pgbk-spool/%f.ck; echo "… failed its check …" >&2
 *   fi
 *   exec NODE CLI wal-fetch --config CONFIG SERVER %f %p
 *
 * Why this is safe (see spool.ts for how spooled files are made):
 * - `.pgbk-spool` is relative: PostgreSQL runs restore_command in its data directory, so this is
 *   always this cluster's own private spool, never one of a moved or copied directory.
 * - The rename is atomic; after it, the only copy is PostgreSQL's %p. The file is checked (CRC-32
 *   + length via cksum, ~10 ms for 16 MiB) through the descriptor opened before the rename, while
 *   the rename runs (two program starts side by side instead of one after the other: ~5 ms less
 *   of PostgreSQL's wait per segment), and `[ %p -ef /dev/fd/3 ]` (same device and inode) proves
 *   that the file checked is the one now at %p; when it is not (pg_wal on another filesystem, where
 *   mv copies, or a file swapped in between) %p itself is summed, as before. The sum is
 *   compared with the sidecar the worker wrote after reading the file back; a failed rename, a
 *   different inode, a mismatch, a missing sidecar or a missing cksum program removes %p and falls
 *   through to Node. So the fast path hands over a file only if it is the exact bytes that were
 *   verified against the archive's sha256, and any failure of it only costs a Node start.
 * - A hit starts three programs (sh, then mv and cksum at once) and no more: PostgreSQL's replay
 *   waits for them, and on a busy 2-core host a program start costs ~5-10 ms. So the hit leaves
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
import { CHECK_SUFFIX, PENDING_SUFFIX, SPOOL_DIR_NAME } from './spool.js';

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
  // `command exec 3<` opens the spooled file without exiting the shell when it is absent; the
  // rename (in the background) and the cksum of the opened file then run side by side, and
  // `%p -ef /dev/fd/3` proves the file checked is the file PostgreSQL gets (else, e.g. pg_wal on
  // another filesystem where mv copies, %p itself is checked).
  return (
    `n=0; while ! { command exec 3< ${s}; } 2>/dev/null; do ` +
    `if [ -f ${pending} ] && [ $n -lt 150 ]; then n=$((n+1)); sleep 0.02; else n=miss; break; fi; done; ` +
    `if [ $n != miss ]; then ` +
    `mv -f ${s} %p 2>/dev/null & m=$!; k=$(cksum <&3); ` +
    `if wait $m && { [ %p -ef /dev/fd/3 ] || k=$(cksum < %p); } && { read -r c < ${check}; } 2>/dev/null && [ "$k" = "$c" ]; then exit 0; fi; ` +
    `rm -f %p ${check}; echo "pgbk wal-fetch: the spooled copy of %f failed its check; reading the archive" >&2; fi; ` +
    `exec 3<&-; exec ${node} %f %p`
  );
}
