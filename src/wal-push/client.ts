/**
 * `pgbk wal-push --to ssh://USER@HOST[:PORT]/CATALOG [--identity F] [--known-hosts F]
 * [--remote-pgbk CMD] [--compression C] SERVER %p`: the per-segment archive_command for a catalog
 * on another host. Tiny on purpose (no ssh2, no config, no catalog code): it hands the segment to
 * the long-lived worker over a unix socket — starting one when none answers — and exits 0 only
 * when the worker reports the file durable in the remote archive.
 * `--print-archive-command [--pgdata DIR] [--wait-seconds N]` prints the recommended
 * archive_command instead: the shell fast path of fast-path.ts in front of this client.
 */

import { spawn } from 'node:child_process';
import { chmod, mkdir, open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgbkError } from '../errors.js';
import type { CliIo } from '../cli/io.js';
import { parseCommand, requirePositional } from '../cli/options.js';
import { askWorker } from '../transport/worker-socket.js';
import { optionArgs, optionsFrom, runtimeDir, socketPath, workerKey, type PushOptions } from './target.js';
import { WAL_PUSH_REMOTE_OPTIONS } from '../cli/commands.js';

interface Reply {
  readonly ok?: boolean;
  readonly error?: string;
}

const REPLY_TIMEOUT_MS = 300_000;

function ask(sock: string, request: string): Promise<Reply | 'no-worker'> {
  // A wedged worker must not stall PostgreSQL's archiver forever: give up, PostgreSQL retries.
  return askWorker<Reply>(sock, request, 'wal-push worker', REPLY_TIMEOUT_MS);
}

async function startWorker(args: readonly string[], key: string): Promise<void> {
  const log = await open(path.join(runtimeDir(), `walpush-${key}.log`), 'a', 0o600);
  const cli = process.argv[1];
  if (cli === undefined) throw new PgbkError('INTERNAL', "cannot tell where pgbk's cli.js is");
  const child = spawn(process.execPath, [cli, 'wal-push-worker', ...args], { detached: true, stdio: ['ignore', log.fd, log.fd] });
  child.unref();
  await log.close();
}

const CLIENT_FLAGS = WAL_PUSH_REMOTE_OPTIONS;

/**
 * `--print-archive-command [--pgdata DIR] [--wait-seconds N]`: the archive_command with the
 * shell fast path (fast-path.ts) for this target and data directory. Run it as the PostgreSQL OS
 * user: the markers live in that user's runtime directory.
 */
async function printArchiveCommand(opts: PushOptions, pgdataGiven: string, waitGiven: string | undefined, io: CliIo): Promise<number> {
  const { fastPathArchiveCommand, markerDir } = await import('./fast-path.js');
  const cli = process.argv[1];
  if (cli === undefined) throw new PgbkError('INTERNAL', "cannot tell where pgbk's cli.js is");
  const waitSeconds = Number(waitGiven ?? '5');
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0 || waitSeconds > 600)
    throw new PgbkError('USAGE', `--wait-seconds ${waitGiven ?? ''}: expected 0 to 600`);
  // The client derives the worker from the data directory as getcwd() reports it (no symlinks).
  const pgdata = await realpath(path.resolve(io.cwd, pgdataGiven)).catch((err: Error) => {
    throw new PgbkError('USAGE', `--pgdata ${pgdataGiven}: ${err.message}`);
  });
  const key = workerKey(opts, pgdata);
  io.stdout.write(
    `${fastPathArchiveCommand({
      socket: socketPath(key),
      markers: markerDir(key),
      waitSeconds,
      fallback: [process.execPath, cli, 'wal-push', ...optionArgs(opts), opts.server],
    })}\n`,
  );
  return 0;
}

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseCommand('wal-push', args, CLIENT_FLAGS);
    const server = requirePositional('wal-push', positionals, 0, 'SERVER');
    const opts = optionsFrom(values, server);
    if (values['print-archive-command'] === true) return await printArchiveCommand(opts, values.pgdata ?? io.cwd, values['wait-seconds'], io);
    const file = requirePositional('wal-push', positionals, 1, 'PATH (%p)');
    const abs = path.resolve(io.cwd, file);
    // PostgreSQL passes pg_wal/NAME relative to the data directory it runs us in.
    const pgdata = path.basename(path.dirname(abs)) === 'pg_wal' ? path.dirname(path.dirname(abs)) : io.cwd;
    const key = workerKey(opts, pgdata);
    const sock = socketPath(key);
    await mkdir(runtimeDir(), { recursive: true, mode: 0o700 });
    await chmod(runtimeDir(), 0o700);
    const request = `${JSON.stringify({ name: path.basename(abs), path: abs })}\n`;
    const deadline = Date.now() + 60_000;
    let started = 0;
    for (;;) {
      const reply = await ask(sock, request);
      if (reply !== 'no-worker') {
        if (reply.ok === true) return 0;
        io.stderr.write(`pgbk wal-push: ${path.basename(abs)}: ${reply.error ?? 'failed'}\n`);
        return 1;
      }
      if (Date.now() > deadline) throw new PgbkError('NETWORK', 'no wal-push worker came up within 60 s');
      if (Date.now() - started > 10_000) {
        started = Date.now();
        await startWorker([...optionArgs(opts), '--pgdata', pgdata, server], key);
      }
      await sleep(50);
    }
  } catch (err) {
    const msg = err instanceof PgbkError || err instanceof Error ? err.message : String(err);
    io.stderr.write(`pgbk wal-push: ${msg}\n`);
    return 1;
  }
}
