/**
 * The drill's own PostgreSQL: the restored copy started on a private unix socket (no TCP), a free
 * port number, archiving off and trust authentication through an hba file of its own (the copy's
 * pg_hba.conf is the source's and is not used). Started with an argv array, stopped by its PID:
 * SIGINT (fast shutdown), then SIGQUIT (immediate), then SIGKILL, each after a wait.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgbkError } from '../errors.js';
import { findPgBinary } from '../pg/pg-bin.js';
import { withPgClient } from '../pg/pg-session.js';
import { pickFreePort } from '../restore/start-command.js';
import { DRILL_HBA, drillCopyArgs } from './copy-settings.js';
import { stopByPid } from './stop.js';
import { settleWithin } from '../lib/timer.js';

export interface CopyOptions {
  readonly pgdata: string;
  /** Private directory (the drill's scratch directory) for the socket, hba file and log. */
  readonly runDir: string;
  readonly pgVersion: number;
  readonly user: string;
  /** User settings first; pgbk's own (socket, archiving, hba) are given after them and win. */
  readonly settings: Readonly<Record<string, string>>;
}

export interface RunningCopy {
  readonly pid: number;
  readonly port: number;
  readonly logFile: string;
  /** libpq conninfo over the private socket, for a database. */
  conninfo(database: string): string;
  /** Resolves with the exit code (or signal name) when the postmaster exits. */
  readonly exited: Promise<string>;
  hasExited(): boolean;
  logTail(lines?: number): string;
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** conninfo value quoting (libpq): single quotes, backslash-escaped. */
function q(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export async function startCopy(o: CopyOptions): Promise<RunningCopy> {
  const port = await pickFreePort([5432]);
  const hba = path.join(o.runDir, 'pg_hba.drill.conf');
  await writeFile(hba, DRILL_HBA, { mode: 0o600 });
  const logFile = path.join(o.runDir, 'postgres.log');
  const args = ['-D', o.pgdata, ...drillCopyArgs(o.settings, { port, runDir: o.runDir, hbaFile: hba })];
  const fd = openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    // Its own process group: a Ctrl-C on the terminal reaches pgbk, which stops the copy itself.
    child = spawn(findPgBinary('postgres', o.pgVersion), args, { stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let exitText: string | undefined;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitText = signal ?? `exit code ${code ?? '?'}`;
      resolve(exitText);
    });
    child.once('error', (err) => {
      exitText = err.message;
      resolve(exitText);
    });
  });
  const pid = child.pid;
  if (pid === undefined) {
    await exited;
    throw new PgbkError('PG', `cannot start postgres for the drill: ${exitText ?? 'no pid'}`, { path: o.pgdata });
  }
  return {
    pid,
    port,
    logFile,
    conninfo: (database) => `host=${q(o.runDir)} port=${port} user=${q(o.user)} dbname=${q(database)}`,
    exited,
    hasExited: () => exitText !== undefined,
    logTail: (lines = 15) => tail(logFile, lines),
  };
}

/**
 * Poll until the copy answers and is out of recovery (promoted). Throws when it exits first (the
 * log tail says why) or when `signal` fires (the time limit).
 */
export async function waitPromoted(copy: RunningCopy, signal: AbortSignal): Promise<void> {
  let last = 'not answering yet';
  for (;;) {
    if (copy.hasExited()) {
      throw new PgbkError('PG', `the restored copy stopped before it was promoted (${await copy.exited}): ${copy.logTail(5)}`);
    }
    if (signal.aborted) throw new PgbkError('PG', `still in recovery when the time limit was reached (${last})`);
    try {
      const inRecovery = await withPgClient(copy.conninfo('postgres'), async (c) => (await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r as boolean);
      if (inRecovery === false) return;
      last = 'in recovery';
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(250, undefined, { signal }).catch(() => undefined);
  }
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Stop the copy by its PID (stop.ts's ladder); its exit event says when it is gone. */
export async function stopCopy(copy: RunningCopy): Promise<void> {
  await stopByPid({
    pid: copy.pid,
    alive: async () => !copy.hasExited(),
    send: async (sig) => kill(copy.pid, `SIG${sig}`),
    gone: async (ms) => {
      if (!copy.hasExited()) await settleWithin(copy.exited, ms);
      return copy.hasExited();
    },
  });
}
