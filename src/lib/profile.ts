/**
 * PGBK_SSH_PROFILE=1: the wall time of each phase of a command on stderr (where the time goes;
 * bench/ssh-peers.ts). Off by default: nothing is measured.
 */
export const PROFILE = process.env['PGBK_SSH_PROFILE'] === '1';
let lastMark = 0;

/** One phase ended: its duration since the previous mark (or since the process started). */
export function mark(what: string): void {
  if (!PROFILE) return;
  const now = performance.now();
  process.stderr.write(`[profile] ${what}: ${((now - lastMark) / 1000).toFixed(3)} s (at ${(now / 1000).toFixed(3)} s since process start)\n`);
  lastMark = now;
}
