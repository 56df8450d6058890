/**
 * The posix lock (DESIGN.md §4): a file created whole and exclusively (temp file + link, so nobody
 * ever reads a half-written one) naming its holder. A holder that died on this host is taken over;
 * a live one, or one on another host (which cannot be checked), holds it.
 *
 * Taking over must not let two takers both win, nor let a slow taker remove a lock that a faster
 * one has just created. So only the process that exclusively creates the marker
 * "<lock>.takeover-<dead holder's id>" may remove the lock, and only after re-reading that the lock
 * still carries that id. Nobody else can change a lock file while it holds a given id (its holder
 * is dead and removal needs the marker), so the check and the unlink cannot be separated by a
 * change. A taker that dies holding a marker is itself taken over the same way, one level down.
 * catalog/lock.ts keeps only the waiting loop on top of this.
 */

import { randomBytes } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PgbkError } from '../../errors.js';
import { fsyncDir, writeFileNoClobber } from '../../lib/atomic.js';
import { isOwnerAlive, processIdentity } from '../../lib/process-identity.js';
import { holderFields, parseHolder } from '../lock-holder.js';
import type { Lease, LockAttempt, LockHolder } from '../repository.js';
import { errnoOf, FILE_MODE, failure, inDir } from './fs-util.js';

type Holder = LockHolder | 'gone' | 'unreadable';

/** The lock file's text (the holder as JSON, in this key order). */
function lockText(h: LockHolder, indent: number | undefined): string {
  return `${JSON.stringify(holderFields(h), null, indent)}\n`;
}

async function readHolder(file: string): Promise<Holder> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return 'gone';
    throw err;
  }
  try {
    const holder = parseHolder(JSON.parse(text) as Record<string, unknown>);
    if (holder !== undefined) return holder;
  } catch {
    // fall through: not a lock file pgbk wrote
  }
  return 'unreadable';
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}

const MAX_TAKEOVER_DEPTH = 4;

function takerIdentity(): LockHolder {
  return { id: randomBytes(8).toString('hex'), ...processIdentity(), host: os.hostname(), command: 'takeover', since: new Date().toISOString() };
}

/** Remove `file` if it still holds `staleId`; true when the caller may retry creating it. */
async function removeStale(file: string, staleId: string, thisHost: string, depth: number): Promise<boolean> {
  const marker = `${file}.takeover-${staleId}`;
  const me = lockText(takerIdentity(), undefined);
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

function leaseFor(file: string, holder: LockHolder): Lease {
  const stillOurs = async (): Promise<boolean> => {
    const current = await readHolder(file);
    return current !== 'gone' && current !== 'unreadable' && current.id === holder.id;
  };
  return {
    holder,
    async renew(): Promise<void> {
      // Nothing expires on posix; renewing only confirms nobody removed the lock by hand.
      if (!(await stillOurs())) throw new PgbkError('LOCK', 'the lock was removed or taken over while held', { path: file });
    },
    async release(): Promise<void> {
      try {
        if (!(await stillOurs())) return;
        await unlinkIfPresent(file);
        await fsyncDir(path.dirname(file));
      } catch (err) {
        throw failure('release the lock', file, err);
      }
    },
  };
}

/** A few rounds cover "released between our attempt and the read" and one takeover. */
const MAX_ROUNDS = 5;

export async function tryLockFile(file: string, holder: LockHolder): Promise<LockAttempt> {
  const text = lockText(holder, 2);
  const thisHost = os.hostname();
  try {
    let last: LockHolder | 'unreadable' = 'unreadable';
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const created = await inDir(path.dirname(file), () => writeFileNoClobber(file, text, { mode: FILE_MODE }));
      if (created === 'created') return { acquired: true, lease: leaseFor(file, holder) };
      const current = await readHolder(file);
      if (current === 'gone') continue;
      last = current;
      if (current === 'unreadable' || isOwnerAlive(current, thisHost)) break;
      if (!(await removeStale(file, current.id, thisHost, 0))) break;
    }
    return { acquired: false, holder: last };
  } catch (err) {
    throw failure('take the lock', file, err);
  }
}

export async function readLockFile(file: string): Promise<LockHolder | 'unreadable' | undefined> {
  try {
    const h = await readHolder(file);
    return h === 'gone' ? undefined : h;
  } catch (err) {
    if (errnoOf(err) === 'ENOTDIR' || errnoOf(err) === 'EISDIR') return 'unreadable';
    throw failure('read the lock', file, err);
  }
}
