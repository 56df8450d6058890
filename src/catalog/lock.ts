/**
 * One writer per server (DESIGN.md §4): apply, the daemon and one-off backups take
 * <catalog>/<server>/lock; readers need none. The lock file is created whole and exclusively
 * (temp file + link, so nobody ever reads a half-written one) and names its holder. A holder that
 * died on this host is taken over; a live one (or one on another host, which cannot be checked)
 * is waited for up to the timeout, then the error names it.
 *
 * Taking over must not let two takers both win, nor let a slow taker remove a lock that a faster
 * one has just created. So only the process that exclusively creates the marker
 * "lock.takeover-<dead holder's id>" may remove the lock, and only after re-reading that the lock
 * still carries that id. Nobody else can change a lock file while it holds a given id (its holder
 * is dead and removal needs the marker), so the check and the unlink cannot be separated by a
 * change. A taker that dies holding a marker is itself taken over the same way, one level down.
 */

import { randomBytes } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgbkError } from '../errors.js';
import { processIdentity } from '../lib/process-identity.js';
import { fsyncDir, writeFileNoClobber } from '../lib/atomic.js';
import { isOwnerAlive } from './backups.js';
import { lockPath } from './layout.js';

export interface LockInfo {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  readonly since: string; // ISO
  /** The holder's start (lib/process-identity); absent in locks written before it was recorded. */
  readonly processStart?: string;
}

export interface LockHandle {
  readonly info: LockInfo;
  /** Remove the lock if it is still ours (idempotent). */
  release(): Promise<void>;
}

export interface AcquireOptions {
  readonly command: string;
  readonly timeoutMs: number;
  readonly pollMs?: number;
}

type Holder = LockInfo | 'gone' | 'unreadable';

function newInfo(command: string): LockInfo {
  return {
    id: randomBytes(8).toString('hex'),
    ...processIdentity(),
    host: os.hostname(),
    command,
    since: new Date().toISOString(),
  };
}

async function readHolder(file: string): Promise<Holder> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  try {
    const o = JSON.parse(text) as Partial<LockInfo>;
    if (typeof o.id === 'string' && typeof o.pid === 'number' && typeof o.host === 'string') {
      return {
        id: o.id,
        pid: o.pid,
        host: o.host,
        command: typeof o.command === 'string' ? o.command : '?',
        since: typeof o.since === 'string' ? o.since : '?',
        ...(typeof o.processStart === 'string' ? { processStart: o.processStart } : {}),
      };
    }
  } catch {
    // fall through: not a lock file pgbk wrote
  }
  return 'unreadable';
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

const MAX_TAKEOVER_DEPTH = 4;

/** Remove `file` if it still holds `staleId`; true when the caller may retry creating it. */
async function removeStale(file: string, staleId: string, thisHost: string, depth: number): Promise<boolean> {
  const marker = `${file}.takeover-${staleId}`;
  const me = `${JSON.stringify(newInfo('takeover'))}\n`;
  if ((await writeFileNoClobber(marker, me)) === 'exists') {
    const other = await readHolder(marker);
    if (other === 'gone' || other === 'unreadable' || isOwnerAlive(other, thisHost)) return false;
    if (depth >= MAX_TAKEOVER_DEPTH) return false;
    if (!(await removeStale(marker, other.id, thisHost, depth + 1))) return false;
    if ((await writeFileNoClobber(marker, me)) === 'exists') return false;
  }
  try {
    const current = await readHolder(file);
    if (current !== 'gone' && current !== 'unreadable' && current.id === staleId) {
      await unlinkIfPresent(file);
      await fsyncDir(path.dirname(file));
    }
    return true;
  } finally {
    await unlinkIfPresent(marker);
  }
}

function describe(server: string, holder: LockInfo): string {
  return `server ${server} is locked by pid ${holder.pid} on host ${holder.host} running "${holder.command}" since ${holder.since}`;
}

/** Take the server's lock, waiting up to opts.timeoutMs for a live holder. */
export async function acquireLock(catalog: string, server: string, opts: AcquireOptions): Promise<LockHandle> {
  const file = lockPath(catalog, server);
  const info = newInfo(opts.command);
  const body = `${JSON.stringify(info, null, 2)}\n`;
  const thisHost = info.host;
  const pollMs = opts.pollMs ?? 500;
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    let created: 'created' | 'exists';
    try {
      created = await writeFileNoClobber(file, body, { mode: 0o640 });
    } catch (err) {
      throw new PgbkError('CATALOG', `cannot create lock file: ${(err as Error).message}`, { server, path: file });
    }
    if (created === 'created') return handleFor(file, info);
    const holder = await readHolder(file);
    if (holder === 'gone') continue; // released between our attempt and the read
    if (holder !== 'unreadable' && !isOwnerAlive(holder, thisHost)) {
      if (await removeStale(file, holder.id, thisHost, 0)) continue;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      if (holder === 'unreadable') {
        throw new PgbkError('LOCK', `server ${server} is locked by an unreadable lock file`, {
          server,
          path: file,
          hint: `if no pgbk process is running for this server, remove ${file}`,
        });
      }
      throw new PgbkError('LOCK', describe(server, holder), {
        server,
        path: file,
        hint: 'wait for it to finish, or raise --lock-timeout',
      });
    }
    await sleep(Math.min(pollMs, remaining));
  }
}

function handleFor(file: string, info: LockInfo): LockHandle {
  return {
    info,
    async release(): Promise<void> {
      const current = await readHolder(file);
      if (current === 'gone' || current === 'unreadable' || current.id !== info.id) return;
      await unlinkIfPresent(file);
      await fsyncDir(path.dirname(file));
    },
  };
}

/** Who holds the server's lock, for `pgbk status`; undefined when nobody does. */
export async function readLock(catalog: string, server: string): Promise<LockInfo | undefined> {
  const holder = await readHolder(lockPath(catalog, server));
  if (holder === 'gone') return undefined;
  if (holder === 'unreadable') {
    throw new PgbkError('CATALOG', 'lock file is unreadable', { server, path: lockPath(catalog, server) });
  }
  return holder;
}
