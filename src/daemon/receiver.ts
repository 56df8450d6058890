/**
 * Keeps one pg_receivewal running per streaming server: ensures the replication slot, starts the
 * receiver, and restarts it when it exits, with exponential backoff (1 s doubling to 60 s, reset
 * after a minute of healthy running) so a server that is down is not hammered.
 */

import type { ChildProcess } from 'node:child_process';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatError, toPgbkError } from '../errors.js';
import { formatPidFile, isSameProcessAlive, parsePidFile, processIdentity, type ProcessIdentity } from '../lib/process-identity.js';
import { findPgBinary } from '../pg/pg-bin.js';
import { probeServer } from '../pg/probe.js';
import { ensureSlot, spawnReceiveWal } from '../pg/receivewal.js';
import type { Logger } from '../lib/logger.js';

export interface ReceiverOptions {
  readonly server: string;
  readonly conninfo: string;
  readonly directory: string;
  readonly slot: string;
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

const HEALTHY_MS = 60_000;
/** In the streaming directory: the PID of the pg_receivewal this daemon started there. */
const PID_FILE = '.receiver.pid';

/**
 * A daemon killed with SIGKILL leaves its pg_receivewal running, holding the slot: the new daemon's
 * receiver would be refused ("slot is active") for as long as the orphan lives. Stop the orphan —
 * by the PID we recorded, and only if that PID is still a pg_receivewal writing into our directory.
 */
async function stopOrphan(directory: string, log: (msg: string) => void): Promise<void> {
  const file = path.join(directory, PID_FILE);
  let recorded: ProcessIdentity | undefined;
  try {
    recorded = parsePidFile(await readFile(file, 'utf8'));
  } catch {
    return;
  }
  if (recorded === undefined || recorded.pid <= 1 || !isSameProcessAlive(recorded)) return;
  const pid = recorded.pid;
  let cmdline = '';
  try {
    cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  } catch {
    return; // not Linux, or gone: nothing we can verify, so nothing we touch
  }
  if (!cmdline.includes('pg_receivewal') || !cmdline.includes(`--directory=${directory}`)) return;
  log(`stopping pg_receivewal pid ${pid} left behind by a previous daemon`);
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && isSameProcessAlive(recorded); i++) await sleep(100);
}

export class ReceiverSupervisor {
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly opts: ReceiverOptions) {}

  /** Identity of what this supervisor runs: a reload with other settings needs a new one. */
  get key(): string {
    return `${this.opts.conninfo}\n${this.opts.directory}\n${this.opts.slot}`;
  }

  start(): void {
    void this.launch();
  }

  private log(level: 'info' | 'warn' | 'error', msg: string): void {
    this.opts.logger.log(level, msg, { server: this.opts.server, slot: this.opts.slot });
  }

  private scheduleRestart(): void {
    if (this.stopped) return;
    const min = this.opts.minBackoffMs ?? 1000;
    const delay = Math.min(this.opts.maxBackoffMs ?? 60_000, min * 2 ** Math.min(this.failures, 16));
    this.failures++;
    this.log('warn', `pg_receivewal restarts in ${Math.round(delay / 1000)}s`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.launch();
    }, delay);
  }

  private async launch(): Promise<void> {
    if (this.stopped) return;
    let binary: string;
    try {
      const facts = await probeServer(this.opts.conninfo);
      if ((await ensureSlot(this.opts.conninfo, this.opts.slot)) === 'created') this.log('info', `replication slot ${this.opts.slot} created`);
      binary = findPgBinary('pg_receivewal', facts.pgVersion, this.opts.env);
    } catch (err) {
      this.log('error', `cannot start pg_receivewal: ${formatError(toPgbkError(err, { server: this.opts.server }))}`);
      this.scheduleRestart();
      return;
    }
    await stopOrphan(this.opts.directory, (m) => this.log('warn', m));
    if (this.stopped) return;
    const started = Date.now();
    const child = spawnReceiveWal({ binary, conninfo: this.opts.conninfo, directory: this.opts.directory, slot: this.opts.slot });
    this.child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-4096);
    });
    this.log('info', `pg_receivewal started (pid ${child.pid ?? '?'}) into ${this.opts.directory}`);
    if (child.pid !== undefined) await writeFile(path.join(this.opts.directory, PID_FILE), formatPidFile(processIdentity(child.pid))).catch(() => undefined);
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.log('error', `pg_receivewal: ${err.message}`);
      });
      child.on('close', (code, signal) => {
        this.child = undefined;
        void unlink(path.join(this.opts.directory, PID_FILE)).catch(() => undefined);
        if (Date.now() - started > HEALTHY_MS) this.failures = 0;
        const lines = stderr
          .trim()
          .split('\n')
          .filter((l) => /error|fatal|could not/i.test(l))
          .slice(-3)
          .join('; ');
        if (!this.stopped) this.log('warn', `pg_receivewal exited (${signal ?? `exit ${String(code)}`})${lines === '' ? '' : `: ${lines}`}`);
        resolve();
        this.scheduleRestart();
      });
    });
  }

  /** Stop restarting; SIGTERM the receiver (it flushes and exits) and wait for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await this.exited;
  }
}
