/**
 * Whether the process that wrote a record (a lock, a STARTED backup, a worker's pid file) is still
 * running. kill(pid, 0) alone is not enough: once a SIGKILLed holder's pid is reused by an
 * unrelated process, the dead holder looks alive forever (every apply would wait out its lock
 * timeout, and its STARTED backup would never be marked FAILED). So a record also carries the
 * process's start: the kernel's boot id (pids and tick counts restart at boot) and the start time
 * in clock ticks since boot (/proc/PID/stat field 22). Same pid + same start = same process.
 *
 * Leaf module: imports nothing from the rest of pgbk. Synchronous on purpose: two small /proc
 * reads, used where callers decide liveness inline (e.g. while mapping records for `list`).
 */

import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  readonly pid: number;
  /**
   * "<boot id>:<start ticks>" on Linux; absent where /proc cannot tell (another OS) and in records
   * written before pgbk recorded it — those fall back to kill(pid, 0).
   */
  readonly processStart?: string;
}

let bootIdCache: string | null | undefined;

function bootId(): string | undefined {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      bootIdCache = null;
    }
  }
  return bootIdCache ?? undefined;
}

/**
 * Field 22 (starttime) of a /proc/PID/stat line. Field 2 is the command name in parentheses and
 * may itself contain spaces and ')', so fields are counted from the last ')'.
 */
export function startTicksFromStat(stat: string): string | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).split(' '); // fields[0] is field 3 (state)
  const ticks = fields[22 - 3];
  return ticks !== undefined && /^\d+$/.test(ticks) ? ticks : undefined;
}

type StartLookup = { readonly kind: 'start'; readonly value: string } | { readonly kind: 'gone' } | { readonly kind: 'unknown' };

function lookupStart(pid: number): StartLookup {
  const boot = bootId();
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // With /proc mounted, a missing entry means no such process; without it we cannot tell.
    if ((code === 'ENOENT' || code === 'ESRCH') && boot !== undefined) return { kind: 'gone' };
    return { kind: 'unknown' };
  }
  const ticks = startTicksFromStat(stat);
  if (boot === undefined || ticks === undefined) return { kind: 'unknown' };
  return { kind: 'start', value: `${boot}:${ticks}` };
}

/** The identity to record for `pid` (default: this process). */
export function processIdentity(pid: number = process.pid): ProcessIdentity {
  const start = lookupStart(pid);
  return start.kind === 'start' ? { pid, processStart: start.value } : { pid };
}

function signalProbe(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True while the process a record names still runs: its pid exists and, when the record carries a
 * start, the process now holding that pid started at that very moment of this boot. A record from
 * another boot is dead whatever runs under its pid now.
 */
export function isSameProcessAlive(id: ProcessIdentity): boolean {
  if (!Number.isInteger(id.pid) || id.pid <= 0) return false;
  if (!signalProbe(id.pid)) return false;
  if (id.processStart === undefined) return true; // an old record: the pid is all we know
  const now = lookupStart(id.pid);
  switch (now.kind) {
    case 'start':
      return now.value === id.processStart;
    case 'gone':
      return false;
    case 'unknown':
      return true; // cannot compare here: waiting is safe, stealing is not
    default: {
      const never: never = now;
      return never;
    }
  }
}

export interface Owner extends ProcessIdentity {
  readonly host: string;
}

/**
 * Whether the process that owns a lock or a STARTED backup may still be running. Only a process on
 * this host can be checked; one on another host is presumed alive (waiting is safe, stealing is not).
 * On this host the pid must be alive and, when recorded, its start must match: a dead owner's pid
 * reused by another process does not keep it "alive".
 */
export function isOwnerAlive(owner: Owner, thisHost: string): boolean {
  if (owner.host !== thisHost) return true;
  return isSameProcessAlive(owner);
}

/** A pid file's text: the pid on the first line (what older readers expect), the start on the second. */
export function formatPidFile(id: ProcessIdentity): string {
  return id.processStart === undefined ? `${id.pid}\n` : `${id.pid}\n${id.processStart}\n`;
}

/** Parse formatPidFile's text (or a plain one-line pid file); undefined when there is no valid pid. */
export function parsePidFile(text: string): ProcessIdentity | undefined {
  const [first, second] = text.split('\n');
  const pid = Number((first ?? '').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const start = (second ?? '').trim();
  return start === '' ? { pid } : { pid, processStart: start };
}
