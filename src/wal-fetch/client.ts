/**
 * `pgbk wal-fetch --from ssh://USER@HOST[:PORT]/CATALOG [--identity F] [--known-hosts F]
 * [--remote-pgbk CMD] [--prefetch N] SERVER %f %p`: restore_command on the database host for an
 * archive on the backup host. It runs only when the shell fast path found nothing spooled, and is
 * tiny on purpose (no ssh2, no compression, no catalog code): it asks the long-lived worker for
 * the file over a unix socket — starting one when none answers — and the worker writes it to %p.
 *
 * Exit status, as for local wal-fetch (src/cli/wal-fetch.ts): 0 = %p holds the verified file;
 * 1 = the archive answered "not there"; 255 = anything else (cannot reach or read the archive,
 * corrupt file, bad arguments): PostgreSQL then stops recovery instead of ending it early.
 */

import { spawn } from 'node:child_process';
import { chmod, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatError, PgbkError, toPgbkError } from '../errors.js';
import type { CliIo } from '../cli/io.js';
import { parseCommand, requirePositional } from '../cli/options.js';
import { askWorker } from '../transport/worker-socket.js';
import { runtimeDir } from '../wal-push/target.js';
import { FETCH_FLAGS, fetchLogPath, fetchOptionArgs, fetchOptionsFrom, fetchSocketPath, fetchWorkerKey, type FetchReply } from './source.js';

import { EXIT_FATAL, EXIT_NOT_FOUND } from '../cli/report-error.js';

export { EXIT_FATAL, EXIT_NOT_FOUND };

const FETCHABLE_RE = /^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;
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

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values, positionals } = parseCommand('wal-fetch', args, FETCH_FLAGS);
    debug = values.debug === true;
    const server = requirePositional('wal-fetch', positionals, 0, 'SERVER');
    const name = requirePositional('wal-fetch', positionals, 1, 'WALNAME (%f)');
    const dest = requirePositional('wal-fetch', positionals, 2, 'DEST (%p)');
    if (positionals.length > 3) throw new PgbkError('USAGE', `wal-fetch: unexpected argument "${positionals[3]}"`);
    if (!FETCHABLE_RE.test(name)) throw new PgbkError('USAGE', `wal-fetch: "${name}" is not a WAL segment, .history, .partial or .backup name`, { server });
    const opts = fetchOptionsFrom(values, server, io.cwd);
    const abs = path.resolve(io.cwd, dest);
    // PostgreSQL passes pg_wal/RECOVERYXLOG relative to the data directory it runs us in.
    const pgdata = path.basename(path.dirname(abs)) === 'pg_wal' ? path.dirname(path.dirname(abs)) : io.cwd;
    const key = fetchWorkerKey(opts, pgdata);
    const sock = fetchSocketPath(key);
    await mkdir(runtimeDir(), { recursive: true, mode: 0o700 });
    await chmod(runtimeDir(), 0o700);
    const request = `${JSON.stringify({ name, dest: abs })}\n`;
    const deadline = Date.now() + WORKER_START_MS;
    let started = 0;
    for (;;) {
      const reply = await ask(sock, request);
      if (reply !== 'no-worker') {
        if (reply.status === 'ok') {
          if (/^[0-9A-F]{24}$/.test(name)) io.stderr.write(`pgbk wal-fetch: ${name} served over SSH from the archive (not spooled)\n`);
          return 0;
        }
        if (reply.status === 'absent') {
          if (debug) io.stderr.write(`pgbk wal-fetch: ${name} is not in the archive on ${opts.source.host}\n`);
          return EXIT_NOT_FOUND;
        }
        throw new PgbkError('WAL', reply.error, { server });
      }
      if (Date.now() > deadline)
        throw new PgbkError('NETWORK', `no wal-fetch worker came up within ${WORKER_START_MS / 1000} s (log: ${fetchLogPath(key)})`, { server });
      if (Date.now() - started > 10_000) {
        started = Date.now();
        await startWorker([...fetchOptionArgs(opts), '--pgdata', pgdata, server], fetchLogPath(key), pgdata);
      }
      await sleep(30);
    }
  } catch (err) {
    const e = toPgbkError(err);
    io.stderr.write(`pgbk wal-fetch: FATAL: ${formatError(e)}\n  recovery must stop here rather than end early (exit ${EXIT_FATAL})\n`);
    if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return EXIT_FATAL;
  }
}
