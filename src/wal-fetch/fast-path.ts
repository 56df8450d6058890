/**
 * restore_command with a shell fast path: PostgreSQL runs restore_command once per WAL segment
 * through /bin/sh, and a Node start costs far more than replaying a segment, so the common case —
 * the prefetch worker already spooled the segment — must not start Node:
 *
 *   (wait up to ~3 s while .pgbk-spool/%f.pending says the worker is writing %f, then)
 *   if mv -f .pgbk-spool/%f %p 2>/dev/null; then
 *     if { read -r c < .pgbk-spool/%f.ck; } 2>/dev/null && [ "$(cksum < %p)" = "$c" ]; then exit 0; fi
 *     rm -f %p .pgbk-spool/%f.ck; echo "… failed its check …" >&2
 *   fi
 *   exec NODE CLI wal-fetch --config CONFIG SERVER %f %p
 *
 * Why this is safe (see spool.ts for how spooled files are made):
 * - `.pgbk-spool` is relative: PostgreSQL runs restore_command in its data directory, so this is
 *   always this cluster's own private spool, never one of a moved or copied directory.
 * - The rename is atomic and happens first: after it, the only copy is PostgreSQL's %p. It is
 *   then checked (CRC-32 + length via cksum, ~10 ms for 16 MiB) against the sidecar the worker
 *   wrote after reading the file back; a mismatch, a missing sidecar or a missing cksum program
 *   removes %p and falls through to Node. So the fast path hands over a file only if it is the
 *   exact bytes that were verified against the archive's sha256, and any failure of it only costs
 *   a Node start.
 * - A hit starts three programs (sh, mv, cksum) and no more: PostgreSQL's replay waits for each,
 *   and on a busy 2-core host a program start costs ~10 ms, a third of a hit. So the hit leaves
 *   NAME.ck behind; the worker prunes sidecars of consumed segments (pruneSpool) and
 *   recovery_end_command removes the spool. A leftover sidecar is harmless: the rename of NAME
 *   comes first and misses once NAME is consumed, and a NAME spooled again brings its own sidecar
 *   (published before NAME).
 * - Only segment names are ever spooled (the worker never writes .history/.partial/.backup), so
 *   for those names `mv` misses and Node answers, with its exit codes: 1 = not in the archive,
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
  return (
    `n=0; while ! mv -f ${s} %p 2>/dev/null; do ` +
    `if [ -f ${pending} ] && [ $n -lt 150 ]; then n=$((n+1)); sleep 0.02; else n=miss; break; fi; done; ` +
    `if [ $n != miss ]; then ` +
    `if { read -r c < ${check}; } 2>/dev/null && [ "$(cksum < %p)" = "$c" ]; then exit 0; fi; ` +
    `rm -f %p ${check}; echo "pgbk wal-fetch: the spooled copy of %f failed its check; reading the archive" >&2; fi; ` +
    `exec ${node} %f %p`
  );
}
