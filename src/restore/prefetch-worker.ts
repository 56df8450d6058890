/**
 * The background half of `pgbk wal-fetch`: a detached process, started by the first wal-fetch of
 * a recovery (and again whenever none is alive), that keeps the next few segments after the one
 * PostgreSQL last asked for decompressed and verified in the spool (spool.ts), so each
 * restore_command call is a quick hand-over rather than a cold read + decompression. It stops
 * prefetching at the first segment that is not archived (that is where recovery will end or wait),
 * exits after a few idle seconds, when the spool is removed, or on SIGTERM.
 *
 * Run as a script: node prefetch-worker.js '<json WorkerArgs>'.
 */

import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { PgbkError } from '../errors.js';
import { parseSegmentName, segmentNameFrom, segmentNumber } from '../pg/wal-name.js';
import { claimWorker, isSpooled, putInSpool, readWant, releaseWorker, WORKER_LOG_FILE } from './spool.js';

export interface WorkerArgs {
  readonly spool: string;
  readonly server: string;
  /** The --config given to wal-fetch (undefined: PGBK_CONFIG / discovery from cwd). */
  readonly configPath?: string;
  readonly cwd: string;
}

const IDLE_EXIT_MS = 10_000;
const POLL_MS = 50;

async function log(spool: string, line: string): Promise<void> {
  try {
    await appendFile(path.join(spool, WORKER_LOG_FILE), `${new Date().toISOString()} pid ${process.pid}: ${line}\n`);
  } catch {
    // the spool is gone: nothing to report to
  }
}

export async function runPrefetchWorker(args: WorkerArgs): Promise<void> {
  const { spool, server } = args;
  if (!(await claimWorker(spool))) return;
  let stopping = false;
  process.once('SIGTERM', () => {
    stopping = true;
  });
  try {
    const { loadConfig } = await import('../config/load.js');
    const { readArchivedWal } = await import('../catalog/wal-archive.js');
    const desired = await loadConfig({
      ...(args.configPath === undefined ? {} : { configPath: args.configPath }),
      cwd: args.cwd,
      env: process.env,
    });
    let seenAt = '';
    let lastChange = Date.now();
    while (!stopping) {
      const want = await readWant(spool);
      if (want === undefined || want.server !== server) break;
      if (want.at !== seenAt) {
        seenAt = want.at;
        lastChange = Date.now();
      }
      const parsed = parseSegmentName(want.name);
      if (parsed === undefined) break;
      const from = segmentNumber(want.name, want.segSize);
      let worked = false;
      for (let i = 1; i <= want.count && !stopping; i++) {
        const name = segmentNameFrom(parsed.timeline, from + i, want.segSize);
        if (await isSpooled(spool, name)) continue;
        let buf: Buffer;
        try {
          buf = await readArchivedWal(desired.catalog, server, name);
        } catch (err) {
          // Not archived (yet): recovery ends or waits there. Corrupt: leave it to the foreground
          // wal-fetch, which reports it and stops recovery.
          if (!(err instanceof PgbkError && err.code === 'NOT_FOUND')) await log(spool, `${name}: ${(err as Error).message}`);
          break;
        }
        await putInSpool(spool, server, name, buf);
        worked = true;
        if ((await readWant(spool))?.at !== seenAt) break; // PostgreSQL moved on: re-plan
      }
      if (!worked) {
        if (Date.now() - lastChange > IDLE_EXIT_MS) break;
        await sleep(POLL_MS);
      }
    }
  } catch (err) {
    // ENOENT here usually means recovery ended and the spool was removed.
    await log(spool, `stopping: ${(err as Error).message}`);
  } finally {
    await releaseWorker(spool);
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const raw = process.argv[2] ?? '';
  let args: WorkerArgs | undefined;
  try {
    args = JSON.parse(raw) as WorkerArgs;
  } catch {
    args = undefined;
  }
  if (args === undefined || typeof args.spool !== 'string' || typeof args.server !== 'string' || typeof args.cwd !== 'string') {
    process.stderr.write('prefetch-worker: expected one JSON argument {spool, server, cwd, configPath?}\n');
    process.exitCode = 2;
  } else {
    void runPrefetchWorker(args);
  }
}
