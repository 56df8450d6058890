/**
 * One writer per server (DESIGN.md §4): apply, the daemon and one-off backups take the lock at
 * <server>/lock through the repository port; readers need none. The driver creates it whole and
 * exclusively, names its holder in it, and takes over a holder that is gone (posix: a dead pid on
 * this host, posix/lock.ts); here a live holder (or one on another host, which cannot be checked)
 * is waited for up to the timeout, then the error names it.
 */

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgbkError } from '../errors.js';
import { processIdentity } from '../lib/process-identity.js';
import { catalogKeys } from './layout.js';
import { locate, repositoryOf, type CatalogRef, storeErrorMessage } from './open.js';
import type { LockHolder } from './repository.js';

export type LockInfo = LockHolder;

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

/**
 * How long a lease lives without renewal on stores that cannot see processes (object stores); the
 * posix driver ignores it (its holders are checked by pid, renew only re-reads the lock). The
 * holder renews every ttl/3, so a holder that is alive keeps it through a backup of any length.
 */
const LEASE_TTL_MS = 10 * 60_000;

/**
 * Renew every ttl/3 until the handle is released. A failed renewal (the store briefly unreachable)
 * is tried again at the next tick, while two thirds of the ttl remain; a lost lease (taken over
 * after this process stalled past its ttl) stops the renewals.
 */
function keepRenewed(renew: () => Promise<void>): NodeJS.Timeout {
  const timer = setInterval(() => {
    renew().catch((err: unknown) => {
      if (err instanceof PgbkError && err.code === 'LOCK') clearInterval(timer);
    });
  }, LEASE_TTL_MS / 3);
  // The lock must not keep a finished command alive.
  timer.unref();
  return timer;
}

function newInfo(command: string): LockInfo {
  return {
    id: randomBytes(8).toString('hex'),
    ...processIdentity(),
    host: os.hostname(),
    command,
    since: new Date().toISOString(),
  };
}

function describe(server: string, holder: LockInfo): string {
  return `server ${server} is locked by pid ${holder.pid} on host ${holder.host} running "${holder.command}" since ${holder.since}`;
}

/** Take the server's lock, waiting up to opts.timeoutMs for a live holder. */
export async function acquireLock(catalog: CatalogRef, server: string, opts: AcquireOptions): Promise<LockHandle> {
  const key = catalogKeys.lock(server);
  const file = locate(catalog, key);
  const repo = await repositoryOf(catalog);
  const info = newInfo(opts.command);
  const pollMs = opts.pollMs ?? 500;
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    let attempt: Awaited<ReturnType<typeof repo.tryLock>>;
    try {
      attempt = await repo.tryLock(key, info, { ttlMs: LEASE_TTL_MS });
    } catch (err) {
      throw new PgbkError('CATALOG', `cannot create lock file: ${storeErrorMessage(err)}`, { server, path: file });
    }
    if (attempt.acquired) {
      const lease = attempt.lease;
      const renewal = keepRenewed(lease.renew.bind(lease));
      return {
        info,
        release: () => {
          clearInterval(renewal);
          return lease.release();
        },
      };
    }
    const holder = attempt.holder;
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

/** Who holds the server's lock, for `pgbk status`; undefined when nobody does. */
export async function readLock(catalog: CatalogRef, server: string): Promise<LockInfo | undefined> {
  const holder = await (await repositoryOf(catalog)).readLock(catalogKeys.lock(server));
  if (holder === 'unreadable') {
    throw new PgbkError('CATALOG', 'lock file is unreadable', { server, path: locate(catalog, catalogKeys.lock(server)) });
  }
  return holder;
}
