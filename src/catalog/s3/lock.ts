/**
 * The s3 lock: a lease object (DESIGN.md §4). Object stores have no processes to check and no
 * exclusive create other than a conditional PUT, so the lock is a small JSON object holding its
 * holder and a time to live, written only with conditional PUTs:
 *
 * - take: PUT `If-None-Match: *` — created only if no lease object exists;
 * - a lease is expired when the server's clock (the Date of our read) is more than ttl + 1 s past
 *   the object's Last-Modified (also the server's clock; 1 s for both headers' resolution), so
 *   the holders' and takers' clocks do not matter;
 * - take over an expired or released lease: PUT `If-Match: <the ETag we read>` — of concurrent
 *   takers exactly one succeeds, the others get 412 because the first changed the ETag;
 * - renew: PUT `If-Match: <our ETag>` with a new renewedAt (so a new ETag); 412 = lost;
 * - release: PUT `If-Match: <our ETag>` of a "released" tombstone, which every taker reads as
 *   free. Not a DELETE: a conditional DELETE is not honoured by every S3 server (radosgw 16 deletes
 *   unconditionally), and an unconditional one could remove a lease someone else has just taken.
 *   So a released lock leaves a small tombstone object at the key.
 *
 * Guarantees: at any time at most one holder has a lease that has not expired by the server's
 * clock; a released or expired lease is taken over by exactly one of its racers; release and renew
 * never touch another holder's lease. What a lease cannot do is fence: a holder that stalls past
 * its ttl without renewing may be taken over while it still runs, so holders renew every ttl/3
 * and must stop writing when renew() throws (it throws as soon as the lease was taken over).
 * An object at the key that no pgbk wrote is 'unreadable' and never taken over.
 *
 * A holder that died without releasing (killed, or the store unreachable when it tried) would
 * otherwise block every writer until its lease expires. When the holder ran on this machine — the
 * same host name and the same kernel boot (the boot id in its process start) — its process can be
 * checked as a posix lock's is, and a dead one's lease is taken over at once (still by If-Match:
 * one racer wins). Holders elsewhere are only ever taken over by expiry. (Containers that share a
 * kernel and a host name but not a pid namespace would see each other's holders as dead: give
 * every pgbk host its own host name, as a posix catalog also assumes.)
 */

import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { isSameProcessAlive, processIdentity } from '../../lib/process-identity.js';
import { PgbkError } from '../../errors.js';
import { holderFields, parseHolder } from '../lock-holder.js';
import type { Lease, LockAttempt, LockHolder, LockOptions } from '../repository.js';
import { type S3Context, urlOf } from './client.js';
import { isNoSuchKey, isPreconditionFailed, s3Failure } from './errors.js';

/** Both Last-Modified and Date have one-second resolution. */
const CLOCK_RESOLUTION_MS = 1000;
const MAX_ROUNDS = 5;

type Lease0 =
  | { readonly kind: 'held'; readonly holder: LockHolder; readonly ttlMs: number; readonly etag: string; readonly ageMs: number }
  | { readonly kind: 'released'; readonly etag: string }
  | { readonly kind: 'unreadable' };

function leaseText(h: LockHolder, ttlMs: number): string {
  const body = {
    ...holderFields(h),
    ttlMs,
    renewedAt: new Date().toISOString(),
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

function releasedText(h: LockHolder): string {
  return `${JSON.stringify({ released: true, id: h.id, at: new Date().toISOString() })}\n`;
}

function parseLease(text: string, etag: string, ageMs: number): Lease0 {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (o['released'] === true) return { kind: 'released', etag };
    const holder = parseHolder(o);
    if (holder !== undefined && typeof o['ttlMs'] === 'number') {
      return { kind: 'held', holder, ttlMs: o['ttlMs'], etag, ageMs };
    }
  } catch {
    // fall through: not a lease pgbk wrote
  }
  return { kind: 'unreadable' };
}

/** The lease at the key with its age by the server's clock, or undefined when there is none. */
async function readLease(ctx: S3Context, objectKey: string): Promise<Lease0 | undefined> {
  let serverDate: string | undefined;
  const cmd = new ctx.sdk.GetObjectCommand({ Bucket: ctx.cfg.bucket, Key: objectKey });
  cmd.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      serverDate = (result.response as { headers?: Record<string, string> }).headers?.['date'];
      return result;
    },
    { step: 'deserialize', name: 'pgbkServerDate' },
  );
  try {
    const out = await ctx.client.send(cmd);
    const text = await (out.Body as { transformToString(): Promise<string> }).transformToString();
    const now = serverDate === undefined ? Date.now() : Date.parse(serverDate);
    const age = out.LastModified === undefined || Number.isNaN(now) ? 0 : now - out.LastModified.getTime();
    return parseLease(text, out.ETag ?? '', age);
  } catch (err) {
    if (isNoSuchKey(err)) return undefined;
    throw err;
  }
}

/** PUT the body, conditionally; the new ETag, or undefined when the condition failed (412). */
async function putConditional(ctx: S3Context, objectKey: string, body: string, cond: { ifNoneMatch: true } | { ifMatch: string }): Promise<string | undefined> {
  try {
    const out = await ctx.client.send(
      new ctx.sdk.PutObjectCommand({
        Bucket: ctx.cfg.bucket,
        Key: objectKey,
        Body: body,
        ContentMD5: createHash('md5').update(body).digest('base64'),
        ContentType: 'application/json',
        // Unquoted: radosgw 16 compares If-Match with the bare hex and answers 412 to the quoted
        // form the ETag header carries; AWS S3 accepts both.
        ...('ifMatch' in cond ? { IfMatch: cond.ifMatch.replace(/"/g, '') } : { IfNoneMatch: '*' }),
      }),
    );
    return out.ETag ?? '';
  } catch (err) {
    if (isPreconditionFailed(err)) return undefined;
    // A conditional PUT on a key that vanished meanwhile: the condition failed too.
    if (isNoSuchKey(err)) return undefined;
    throw err;
  }
}

function leaseFor(ctx: S3Context, objectKey: string, holder: LockHolder, ttlMs: number, firstEtag: string): Lease {
  let etag: string | undefined = firstEtag;
  const where = urlOf(ctx, objectKey);
  return {
    holder,
    async renew(): Promise<void> {
      if (etag === undefined) throw new PgbkError('LOCK', `the lock ${where} was released; it cannot be renewed`, { path: where });
      let next: string | undefined;
      try {
        next = await putConditional(ctx, objectKey, leaseText(holder, ttlMs), { ifMatch: etag });
      } catch (err) {
        throw s3Failure(ctx, 'renew the lock', objectKey, err);
      }
      if (next === undefined) {
        etag = undefined;
        throw new PgbkError('LOCK', `the lock ${where} was taken over or removed while held: stop writing`, { path: where });
      }
      etag = next;
    },
    async release(): Promise<void> {
      if (etag === undefined) return;
      try {
        await putConditional(ctx, objectKey, releasedText(holder), { ifMatch: etag });
      } catch (err) {
        throw s3Failure(ctx, 'release the lock', objectKey, err);
      }
      etag = undefined;
    },
  };
}

/** The holder ran on this machine in this boot and its process is gone (see above). */
function deadHereAndNow(h: LockHolder): boolean {
  if (h.host !== hostname() || h.processStart === undefined) return false;
  const ours = processIdentity().processStart;
  const boot = (start: string): string => start.slice(0, start.lastIndexOf(':'));
  if (ours === undefined || boot(ours) !== boot(h.processStart)) return false;
  return !isSameProcessAlive({ pid: h.pid, processStart: h.processStart });
}

export async function tryLockS3(ctx: S3Context, objectKey: string, holder: LockHolder, opts: LockOptions): Promise<LockAttempt> {
  const text = leaseText(holder, opts.ttlMs);
  try {
    let last: LockHolder | 'unreadable' = 'unreadable';
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const created = await putConditional(ctx, objectKey, text, { ifNoneMatch: true });
      if (created !== undefined) return { acquired: true, lease: leaseFor(ctx, objectKey, holder, opts.ttlMs, created) };
      const current = await readLease(ctx, objectKey);
      if (current === undefined) continue;
      if (current.kind === 'unreadable') return { acquired: false, holder: 'unreadable' };
      if (current.kind === 'held') {
        last = current.holder;
        if (current.ageMs <= current.ttlMs + CLOCK_RESOLUTION_MS && !deadHereAndNow(current.holder)) break;
      }
      const taken = await putConditional(ctx, objectKey, text, { ifMatch: current.etag });
      if (taken !== undefined) return { acquired: true, lease: leaseFor(ctx, objectKey, holder, opts.ttlMs, taken) };
    }
    return { acquired: false, holder: last };
  } catch (err) {
    throw s3Failure(ctx, 'take the lock', objectKey, err);
  }
}

export async function readLockS3(ctx: S3Context, objectKey: string): Promise<LockHolder | 'unreadable' | undefined> {
  try {
    const lease = await readLease(ctx, objectKey);
    if (lease === undefined || lease.kind === 'released') return undefined;
    return lease.kind === 'unreadable' ? 'unreadable' : lease.holder;
  } catch (err) {
    throw s3Failure(ctx, 'read the lock', objectKey, err);
  }
}
