/**
 * Stopping a drill's PostgreSQL by its PID, wherever it runs: fast shutdown (SIGINT), then
 * immediate (SIGQUIT), then SIGKILL, each after a wait. One ladder for the copy on this host
 * (postgres.ts), on a drill host (remote.ts) and for the copy of an interrupted drill (reap.ts).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { Transport } from '../transport/transport.js';

export type StopSignal = 'INT' | 'QUIT' | 'KILL';

export interface PidControl {
  readonly pid: number;
  alive(): Promise<boolean>;
  send(sig: StopSignal): Promise<void>;
  /** True once the process is gone, waiting at most `ms`. */
  gone(ms: number): Promise<boolean>;
}

const LADDER: readonly (readonly [StopSignal, number])[] = [
  ['INT', 30_000],
  ['QUIT', 10_000],
  ['KILL', 10_000],
];

/** Stop the process by its PID; true when it is gone. */
export async function stopByPid(p: PidControl): Promise<boolean> {
  for (const [sig, ms] of LADDER) {
    if (!(await p.alive())) return true;
    await p.send(sig);
    if (await p.gone(ms)) return true;
  }
  return !(await p.alive());
}

/** Poll `alive` every 250 ms until it is false or `ms` passed. */
export async function pollGone(alive: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!(await alive())) return true;
    await sleep(250);
  }
  return !(await alive());
}

/** A PID on a host reached through a Transport (kill(1) there). */
export function pidOn(t: Transport, pid: number): PidControl {
  const alive = async (): Promise<boolean> => (await t.run(['kill', '-0', String(pid)])).code === 0;
  return {
    pid,
    alive,
    send: async (sig) => {
      await t.run(['kill', `-${sig}`, String(pid)]);
    },
    gone: (ms) => pollGone(alive, ms),
  };
}
