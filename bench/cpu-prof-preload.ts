/**
 * `NODE_OPTIONS=--import …/cpu-prof-preload.js` (bench/s3.ts, PGBK_BENCH_S3_CPU_PROF=DIR): a CPU
 * profile of the wal-push worker, written into DIR as a .cpuprofile when it exits. Node 20 does not
 * take --cpu-prof in NODE_OPTIONS, and the worker is started by the per-segment client, not by
 * the bench, so the profiler is started from inside. Other processes are left alone.
 */

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env['PGBK_BENCH_CPU_PROF_DIR'];
if (dir !== undefined && process.argv.includes('wal-push-worker')) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // A session on this thread answers synchronously: the profile is written before the exit.
    session.post('Profiler.stop', (err, res) => {
      if (err === null) writeFileSync(path.join(dir, `worker-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
