/** Start `pgbk daemon` as a child process we can signal by PID, and watch its log. */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, REPO_ROOT } from '../../support/pgbk.js';

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  log(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<ChildProcess>();
let handlerInstalled = false;

export function startDaemon(configPath: string, extra: readonly string[] = [], env?: NodeJS.ProcessEnv): DaemonProcess {
  const child = spawn(process.execPath, [CLI, '--config', configPath, 'daemon', ...extra], {
    cwd: REPO_ROOT,
    ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  live.add(child);
  child.on('close', () => live.delete(child));
  if (!handlerInstalled) {
    handlerInstalled = true;
    // A test that fails midway must not leave a daemon behind: killed by its PID at exit.
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  return {
    child,
    pid: child.pid ?? -1,
    log: () => log,
    exited,
    async waitForLog(re, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(log)) {
        if (Date.now() > deadline) throw new Error(`daemon log never matched ${re}:\n${log.slice(-4000)}`);
        if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}) before its log matched ${re}:\n${log.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
