/**
 * Imported first by bench/run.ts (for its side effect, before any module reads os.tmpdir()): the
 * runtime directories of the pgbk processes a bench starts (worker sockets, logs, ack markers under
 * os.tmpdir()/pgbk-UID, also for PostgreSQL's archive_command) go under a TMPDIR of this run,
 * removed when it ends, as test/uvu-timed.mjs does for the tests. Same filesystem as /tmp.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

if (process.env['PGBK_TEST_RUN_TMPDIR'] === undefined) {
  const runTmp = mkdtempSync(path.join(os.tmpdir(), 'pgbk-bench-run-'));
  // 1777 like /tmp: benches run pgbk as root and as postgres.
  chmodSync(runTmp, 0o1777);
  process.env['PGBK_TEST_RUN_TMPDIR'] = runTmp;
  process.env['TMPDIR'] = runTmp;
  process.once('exit', () => rmSync(runTmp, { recursive: true, force: true }));
}
