/**
 * The tiny per-segment side of wal-fetch over SSH (`pgbk wal-fetch --from ssh://…`, its command
 * line in cli/wal-fetch-remote.ts): it runs only when the shell fast path found nothing spooled,
 * and loads no ssh2, no compression, no catalog code. It asks the long-lived worker for the file
 * over a unix socket — starting one when none answers — and the worker writes it to %p.
 */

import { spawn } from 'node:child_process';
import { chmod, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgbkError } from '../errors.js';
import { askWorker } from '../transport/worker-socket.js';
import { runtimeDir } from '../wal-push/target.js';
import { fetchLogPath, fetchOptionArgs, fetchSocketPath, fetchWorkerKey, type FetchOptions, type FetchReply } from './source.js';

/** Names wal-fetch may ask for (a segment, .partial, .backup or .history). */
export const FETCHABLE_RE = /^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;
/** One 16 MiB segment over a slow link, plus the SSH set-up of a fresh worker. */
const REPLY_TIMEOUT_MS = 300_000;
const WORKER_START_MS = 60_000;

function ask(sock: string, request: string): Promise<FetchReply | 'no-worker'> {
  return askWorker<FetchReply>(sock, request, 'wal-fetch worker', REPLY_TIMEOUT_MS);
}

async function startWorker(args: readonly string[], logFile: string, cwd: string): Promise<void> {
  const log = await open(logFile, 'a', 0o600);
  const cli = process.argv[1];
  if (cli === undefined) throw new PgbkError('INTERNAL', "cannot tell where pgbk's cli.js is");
  const child = spawn(process.execPath, [cli, 'wal-fetch-worker', ...args], { detached: true, stdio: ['ignore', log.fd, log.fd], cwd });
  child.on('error', () => undefined);
  child.unref();
  await log.close();
}

/**
 * Ask the worker for `opts` to write WAL file `name` to `dest` (PostgreSQL's %p, relative to
 * `cwd`), starting the worker when none answers; its reply, or an error when none came up.
 */
export async function fetchThroughWorker(opts: FetchOptions, name: string, dest: string, cwd: string): Promise<FetchReply> {
  const abs = path.resolve(cwd, dest);
  // PostgreSQL passes pg_wal/RECOVERYXLOG relative to the data directory it runs us in.
  const pgdata = path.basename(path.dirname(abs)) === 'pg_wal' ? path.dirname(path.dirname(abs)) : cwd;
  const key = fetchWorkerKey(opts, pgdata);
  const sock = fetchSocketPath(key);
  await mkdir(runtimeDir(), { recursive: true, mode: 0o700 });
  await chmod(runtimeDir(), 0o700);
  const request = `${JSON.stringify({ name, dest: abs })}\n`;
  const deadline = Date.now() + WORKER_START_MS;
  let started = 0;
  for (;;) {
    const reply = await ask(sock, request);
    if (reply !== 'no-worker') return reply;
    if (Date.now() > deadline)
      throw new PgbkError('NETWORK', `no wal-fetch worker came up within ${WORKER_START_MS / 1000} s (log: ${fetchLogPath(key)})`, { server: opts.server });
    if (Date.now() - started > 10_000) {
      started = Date.now();
      await startWorker([...fetchOptionArgs(opts), '--pgdata', pgdata, opts.server], fetchLogPath(key), pgdata);
    }
    await sleep(30);
  }
}
