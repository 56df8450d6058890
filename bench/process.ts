/**
 * Child processes and timing for the benchmarks: argument arrays only (never a shell string), a
 * non-zero exit is an error carrying the tail of stderr, and wall time is measured around the
 * whole process (start-up included — that is what a DBA's cron job pays).
 */

import { spawn } from 'node:child_process';

export interface ProcOutput {
  readonly stdout: string;
  readonly stderr: string;
}

export interface ProcOptions {
  /** Run as the postgres OS user (PostgreSQL programs refuse root). */
  readonly asPostgres?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const IS_ROOT = process.getuid?.() === 0;
const KEEP = 256 * 1024;

export function runProcess(cmd: string, args: readonly string[], opts: ProcOptions = {}): Promise<ProcOutput> {
  const [c, a] = opts.asPostgres === true && IS_ROOT ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, [...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      env: { ...process.env, ...(opts.env ?? {}) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-KEEP)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-KEEP)));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.slice(0, 8).join(' ')}${args.length > 8 ? ' …' : ''}: ${signal ?? `exit ${String(code)}`}\n${stderr.slice(-4000)}`));
    });
  });
}

/** Wall seconds of `fn`. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Wall seconds and the result of `fn`. */
export async function timedValue<T>(fn: () => Promise<T>): Promise<{ readonly seconds: number; readonly value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, value };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
