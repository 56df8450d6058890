/**
 * Imported first, for its side effect, by the test runner (test/uvu-timed.mjs, from dist) and by
 * bench/run.ts, before any module reads os.tmpdir(): the runtime directories of the pgbk processes
 * they start (worker sockets, logs, ack markers under os.tmpdir()/pgbk-UID, also for PostgreSQL's
 * archive_command and restore_command) go under a TMPDIR of this run, removed when it ends. Without
 * it each run left its workers' files in /tmp/pgbk-UID for good (866 entries after a day of runs).
 * The test sshd passes it on (test/support/sshd.ts). Same filesystem as /tmp; mode 1777 like /tmp:
 * pgbk runs as root, postgres and other users. Nested runs (a bench's tests) keep the outer one.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

if (process.env['PGBK_TEST_RUN_TMPDIR'] === undefined) {
  const runTmp = mkdtempSync(path.join(os.tmpdir(), 'pgbk-run-'));
  chmodSync(runTmp, 0o1777);
  process.env['PGBK_TEST_RUN_TMPDIR'] = runTmp;
  process.env['TMPDIR'] = runTmp;
  process.once('exit', () => rmSync(runTmp, { recursive: true, force: true }));
}
