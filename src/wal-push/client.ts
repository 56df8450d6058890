/**
 * The tiny per-segment side of wal-push through a worker (`pgbk wal-push --to ssh://…`, or
 * `--worker` for the local catalog; the command line is cli/wal-push-client.ts): no ssh2, no
 * config, no catalog code. It hands the segment to the long-lived worker over a unix socket —
 * starting one when none answers — and reports whether the worker found the file durable in the
 * archive. Also the recommended archive_command: the shell fast path of fast-path.ts in front of
 * this client.
 */

import { spawn } from 'node:child_process';
import { chmod, mkdir, open, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgbkError } from '../errors.js';
import { askWorker } from '../transport/worker-socket.js';
import { runtimeDir, socketPath, type WorkerRoute } from './target.js';

/** The worker's answer for one file: ok only once the file is durable in the archive. */
export interface PushReply {
  readonly ok?: boolean;
  readonly error?: string;
}

const REPLY_TIMEOUT_MS = 300_000;

function ask(sock: string, request: string): Promise<PushReply | 'no-worker'> {
  // A wedged worker must not stall PostgreSQL's archiver forever: give up, PostgreSQL retries.
  return askWorker<PushReply>(sock, request, 'wal-push worker', REPLY_TIMEOUT_MS);
}

/** The running pgbk's cli.js: workers and the fast path's fallback start the same one. */
function cliPath(): string {
  const cli = process.argv[1];
  if (cli === undefined) throw new PgbkError('INTERNAL', "cannot tell where pgbk's cli.js is");
  return cli;
}

function workerLog(key: string): string {
  return path.join(runtimeDir(), `walpush-${key}.log`);
}

/** A started worker: `failed` is set when it exits non-zero (it could not open its sink). */
interface StartedWorker {
  failed: number | undefined;
  /** Size of the log when it started: what follows is this worker's. */
  readonly logFrom: number;
}

async function startWorker(args: readonly string[], key: string): Promise<StartedWorker> {
  const log = await open(workerLog(key), 'a', 0o600);
  const logFrom = (await log.stat()).size;
  const child = spawn(process.execPath, [cliPath(), 'wal-push-worker', ...args], { detached: true, stdio: ['ignore', log.fd, log.fd] });
  const started: StartedWorker = { failed: undefined, logFrom };
  child.once('exit', (code) => {
    if (code !== 0) started.failed = code ?? 1;
  });
  child.unref();
  await log.close();
  return started;
}

/** What a worker that exited at start wrote to its log (its error and hint), on one line. */
async function startLog(key: string, from: number): Promise<string> {
  const text = (await readFile(workerLog(key)).catch(() => Buffer.alloc(0))).subarray(from).toString('utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-4).join(' | ') || `nothing logged (${workerLog(key)})`;
}

/**
 * The archive_command with the shell fast path (fast-path.ts) for this worker route and data
 * directory, falling back to `pgbk wal-push CLIENT_ARGS SERVER %p`. Run it as the PostgreSQL OS
 * user: the markers live in that user's runtime directory.
 */
export async function fastPathCommand(
  route: WorkerRoute,
  clientArgs: readonly string[],
  pgdataGiven: string,
  waitGiven: string | undefined,
  cwd: string,
): Promise<string> {
  const { fastPathArchiveCommand, markerDir } = await import('./fast-path.js');
  const cli = cliPath();
  const waitSeconds = Number(waitGiven ?? '5');
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0 || waitSeconds > 600)
    throw new PgbkError('USAGE', `--wait-seconds ${waitGiven ?? ''}: expected 0 to 600`);
  // The client derives the worker from the data directory as getcwd() reports it (no symlinks).
  const pgdata = await realpath(path.resolve(cwd, pgdataGiven)).catch((err: Error) => {
    throw new PgbkError('USAGE', `--pgdata ${pgdataGiven}: ${err.message}`);
  });
  // The worker is named by the data directory PostgreSQL runs archive_command in: a command
  // printed for any other directory (by default the current one) never finds its worker, so every
  // segment would start the Node client, silently.
  if (
    !(await stat(path.join(pgdata, 'global', 'pg_control')).then(
      (st) => st.isFile(),
      () => false,
    ))
  ) {
    throw new PgbkError('USAGE', `--print-archive-command: ${pgdata} is not a PostgreSQL data directory (no global/pg_control)`, {
      hint: "the printed command is tied to the server's data directory: give it with --pgdata DIR (default: the current directory)",
    });
  }
  const key = route.key(pgdata);
  return fastPathArchiveCommand({
    socket: socketPath(key),
    markers: markerDir(key),
    waitSeconds,
    fallback: [process.execPath, cli, 'wal-push', ...clientArgs, route.server],
  });
}

/**
 * Push `file` (PostgreSQL's %p, relative to `cwd`) through the worker of `route`, starting the
 * worker when none answers; the worker's reply, or an error when none came up within 60 s.
 */
export async function pushThroughWorker(route: WorkerRoute, file: string, cwd: string): Promise<PushReply> {
  const abs = path.resolve(cwd, file);
  // PostgreSQL passes pg_wal/NAME relative to the data directory it runs us in.
  const pgdata = path.basename(path.dirname(abs)) === 'pg_wal' ? path.dirname(path.dirname(abs)) : cwd;
  const key = route.key(pgdata);
  const sock = socketPath(key);
  await mkdir(runtimeDir(), { recursive: true, mode: 0o700 });
  await chmod(runtimeDir(), 0o700);
  const request = `${JSON.stringify({ name: path.basename(abs), path: abs })}\n`;
  const deadline = Date.now() + 60_000;
  let started = 0;
  let worker: StartedWorker | undefined;
  for (;;) {
    const reply = await ask(sock, request);
    if (reply !== 'no-worker') return reply;
    // The worker we started is gone without answering (its store unreachable, credentials refused):
    // say why now instead of starting it again until the deadline; PostgreSQL retries the segment.
    if (worker?.failed !== undefined) {
      throw new PgbkError('NETWORK', `the wal-push worker exited (code ${worker.failed}) before it answered: ${await startLog(key, worker.logFrom)}`, {
        path: workerLog(key),
      });
    }
    if (Date.now() > deadline) throw new PgbkError('NETWORK', `no wal-push worker came up within 60 s (its log: ${workerLog(key)})`);
    if (Date.now() - started > 10_000) {
      started = Date.now();
      worker = await startWorker([...route.workerArgs, '--pgdata', pgdata, route.server], key);
    }
    await sleep(50);
  }
}
