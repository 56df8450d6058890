/**
 * restore_command with a shell fast path: PostgreSQL runs restore_command once per WAL segment
 * through /bin/sh, and a Node start costs far more than replaying a segment, so the common case —
 * the prefetch worker already spooled the segment — must not start Node:
 *
 *   (wait up to ~3 s while .pgbk-spool/%f.pending says the worker is writing %f, then)
 *   if [ pg_wal/%f -ef .pgbk-spool/%f.link ] && [ %p = pg_wal/RECOVERYXLOG ]; then   # placed (builtins only)
 *     if [ pg_wal/%f has the mtime of .pgbk-spool/%f.ref ]; then : > .pgbk-spool/%f.used; exit 1; fi
 *     rm -f .pgbk-spool/%f.link; echo "… failed its check …" >&2
 *   fi
 *   if command exec 3< .pgbk-spool/%f; then              # open the spooled file (no program started)
 *     c=; read -r c < .pgbk-spool/%f.ck                   # its sidecar, while NAME is still there
 *     mv -f .pgbk-spool/%f %p & m=$!; k=$(stat -c '%d %i %s %.9Y' - <&3)   # rename and stat side by side
 *     if wait $m && { [ %p -ef /dev/fd/3 ] || cmp -s - %p <&3; } &&
 *        read -r b < /proc/sys/kernel/random/boot_id && [ "$b $k" = "$c" ]; then exit 0; fi
 *     rm -f %p .pgbk-spool/%f.ck; echo "… failed its check …" >&2
 *   fi
 *   exec NODE CLI wal-fetch --config CONFIG SERVER %f %p
 *
 * The first branch is the common one: the prefetch worker put the segment straight into pg_wal
 * (placement.ts), and `exit 1` — "not in the archive" — makes PostgreSQL read pg_wal/%f in
 * place, as it reads its own WAL, with no program started but sh (tests and `echo` are builtins).
 * Why that exit 1 cannot end recovery early: it is given only when pg_wal/%f is, at that moment,
 * the file the worker wrote from verified bytes, made durable and linked there (same inode as its
 * link in the private spool, modification time unchanged since), and nothing ever removes or
 * replaces a placed pg_wal/%f — PostgreSQL removes only segments older than its restartpoint, and
 * it is replaying this one. A placement that fails its check is forgotten (its link removed) and
 * the segment comes from the spool or Node, whose restored copy PostgreSQL renames over it.
 *
 * Why the spool branch is safe (see spool.ts for how spooled files are made, and what their identity proves):
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
 * - Only segment names are ever spooled or placed (the worker never writes .history/.partial/
 *   .backup), so for those names both branches miss and Node answers, with its exit codes: 1 = not
 *   in the archive, 255 = stop recovery. Otherwise the fast path exits 0 (the file is at %p), 1
 *   only for a placement (the file is at pg_wal/%f), or hands over to Node (`exec` keeps Node's
 *   status).
 */

import { commandLine, type RestoreCommandParts } from '../pg/recovery-conf.js';
import { BOOT_ID_FILE, CHECK_SUFFIX, LINK_SUFFIX, PENDING_SUFFIX, REF_SUFFIX, SPOOL_DIR_NAME, USED_SUFFIX } from './spool.js';

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
  // A placement (placement.ts): pg_wal/%f is the very file the worker linked there
  // (`-ef` its NAME.link: same device and inode) and was not written since (its mtime is the
  // worker's T, neither newer nor older than NAME.ref's). dash's -nt is false when NAME.ref is
  // missing, hence `-f` first.
  const placed = `[ pg_wal/%f -ef ${s}${LINK_SUFFIX} ]`;
  const unchanged = `[ -f ${s}${REF_SUFFIX} ] && ! [ pg_wal/%f -nt ${s}${REF_SUFFIX} ] && ! [ pg_wal/%f -ot ${s}${REF_SUFFIX} ]`;
  // While the worker is writing exactly this segment (NAME.pending exists), wait for it a little
  // (at most ~3 s) rather than start Node: a Node start costs more than the rest of the write.
  // A placement is taken first: exit 1 sends PostgreSQL to pg_wal/%f. Only for PostgreSQL's own
  // restore (%p = pg_wal/RECOVERYXLOG): another caller (pg_rewind --restore-target-wal) takes exit 1
  // as a failure, and gets the file at %p from the spool or Node instead. `true >` (not `: >`, a
  // special builtin whose failed redirection would end the shell) leaves NAME.used for the worker.
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
    `n=0; h=; while :; do if ${placed}; then h=w; break; fi; ` +
    `if { command exec 3< ${s}; } 2>/dev/null; then h=s; break; fi; ` +
    `if [ -f ${pending} ] && [ $n -lt 150 ]; then n=$((n+1)); sleep 0.02; else break; fi; done; ` +
    `if [ "$h" = w ] && [ %p = pg_wal/RECOVERYXLOG ]; then ` +
    `if ${unchanged}; then { true > ${s}${USED_SUFFIX}; } 2>/dev/null; echo "pgbk wal-fetch: %f prefetched into pg_wal" >&2; exit 1; fi; ` +
    `rm -f ${s}${LINK_SUFFIX}; echo "pgbk wal-fetch: the prefetched copy of %f in pg_wal failed its check; reading the archive" >&2; fi; ` +
    `if [ "$h" = w ]; then h=; { command exec 3< ${s}; } 2>/dev/null && h=s; fi; ` +
    `if [ "$h" = s ]; then ` +
    `c=; { read -r c < ${check}; } 2>/dev/null; ` +
    `mv -f ${s} %p 2>/dev/null & m=$!; k=$(stat -c "%%d %%i %%s %%.9Y" - <&3 2>/dev/null); ` +
    `if wait $m && { [ %p -ef /dev/fd/3 ] || cmp -s - %p <&3; } && { read -r b < ${BOOT_ID_FILE}; } 2>/dev/null && [ "$b $k" = "$c" ]; then exit 0; fi; ` +
    `rm -f %p ${check}; echo "pgbk wal-fetch: the spooled copy of %f failed its check; reading the archive" >&2; fi; ` +
    `exec 3<&-; exec ${node} %f %p`
  );
}
