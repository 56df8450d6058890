/**
 * `check` of an object-storage catalog (catalog: s3://BUCKET/PREFIX), in place of the local
 * catalog's "writable, free space" check: the bucket is reachable with these credentials (opening
 * the repository lists one key, so a missing bucket, refused credentials or an unreachable
 * endpoint fail here, named), a write/read/delete probe under the server's prefix round-trips the
 * same bytes, and the local clock agrees with the store's: request signatures expire (AWS refuses
 * a request more than 15 minutes off), and the WAL-lag and backup-age checks compare the store's
 * Last-Modified times with the local clock.
 */

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { catalogKeys } from '../catalog/layout.js';
import { repositoryOf } from '../catalog/open.js';
import { endpointOf, secureContextFor } from '../catalog/s3/client.js';
import type { Repository } from '../catalog/repository.js';
import type { S3RepositoryConfig } from '../config/resolved.js';
import { toPgbkError } from '../errors.js';
import { fail, pass, type CheckResult } from './types.js';

/** Beyond this the local clock is reported: ages computed against the store's times are off by as much. */
export const MAX_CLOCK_SKEW_MS = 60_000;

export interface ObjectStoreReport {
  readonly checks: readonly CheckResult[];
  /** The repository, when it could be opened (the catalog checks that follow read through it). */
  readonly repo?: Repository;
}

/** The store's clock minus ours, from its Date header (1 s resolution), the request's midpoint as ours. */
export function clockSkewMs(serverDate: string, sentAt: number, receivedAt: number): number | undefined {
  const server = Date.parse(serverDate);
  return Number.isNaN(server) ? undefined : server - (sentAt + receivedAt) / 2;
}

/** The verdict on a measured skew (pure). */
export function judgeClockSkew(endpoint: string, skewMs: number, maxMs = MAX_CLOCK_SKEW_MS): CheckResult {
  const secs = Math.round(Math.abs(skewMs) / 1000);
  const dir = skewMs > 0 ? 'behind' : 'ahead of';
  if (Math.abs(skewMs) > maxMs) {
    return fail(
      'clock',
      `this host's clock is ${secs}s ${dir} the object store's (${endpoint})`,
      'synchronise the clock (chrony/ntpd): signed requests expire, and WAL lag and backup age are computed from the store’s times',
    );
  }
  return pass('clock', `within ${Math.max(1, secs)}s of the object store's (${endpoint})`);
}

/** One unauthenticated HEAD of the endpoint: every S3 server answers (often 403) with a Date header. */
async function serverDate(cfg: S3RepositoryConfig): Promise<{ date: string | undefined; sentAt: number; receivedAt: number }> {
  const endpoint = endpointOf(cfg);
  const url = new URL(endpoint);
  // The same trust as every request's (s3/client.ts): the CA file alone when there is one.
  const secureContext = cfg.caFile === undefined ? undefined : secureContextFor(cfg, cfg.caFile);
  const sentAt = Date.now();
  return new Promise((resolve, reject) => {
    const options = {
      method: 'HEAD',
      timeout: 10_000,
      ...(url.protocol === 'https:' ? { rejectUnauthorized: cfg.verifyTls, ...(secureContext === undefined ? {} : { secureContext }) } : {}),
    };
    const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      res.resume();
      const date = res.headers.date;
      resolve({ date, sentAt, receivedAt: Date.now() });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * What the https connection trusted, for the OK line: with caFile, that file alone (the public
 * roots are not used beside it), so a DBA who sees OK here knows what a renewed certificate needs.
 */
export function tlsTrustText(cfg: S3RepositoryConfig): string {
  const endpoint = endpointOf(cfg);
  if (!endpoint.startsWith('https:')) return '';
  if (!cfg.verifyTls) return '; TLS certificate NOT verified (tls.verify: false)';
  return cfg.caFile === undefined ? '' : `; TLS trusts only s3.tls.caFile ${cfg.caFile}`;
}

/** Write, read back and delete one small object under the server's prefix. */
async function probe(repo: Repository, server: string, cfg: S3RepositoryConfig): Promise<CheckResult> {
  const key = `${catalogKeys.server(server)}/pgbk-check-${process.pid}-${randomBytes(4).toString('hex')}`;
  const body = randomBytes(64);
  try {
    await repo.put(key, body);
    const back = await repo.get(key);
    if (back === undefined || !back.equals(body)) {
      await repo.delete([key]);
      return fail('catalog', `${repo.where(key)} read back ${back === undefined ? 'nothing' : 'other bytes'} than were written`, 'check the object store');
    }
    await repo.delete([key]);
    if ((await repo.stat(key)) !== undefined) return fail('catalog', `${repo.where(key)} is still there after it was deleted`, 'check the object store');
  } catch (err) {
    const e = toPgbkError(err);
    return fail(
      'catalog',
      `write/read/delete probe failed: ${e.message}`,
      e.hint ?? 'the credentials must allow PutObject, GetObject and DeleteObject in the bucket',
    );
  }
  return pass('catalog', `${repo.where(catalogKeys.server(server))}: reachable, credentials accepted, write/read/delete probe ok${tlsTrustText(cfg)}`);
}

export async function checkObjectStore(catalog: string, server: string, cfg: S3RepositoryConfig): Promise<ObjectStoreReport> {
  let repo: Repository;
  try {
    repo = await repositoryOf(catalog);
  } catch (err) {
    const e = toPgbkError(err);
    return { checks: [fail('catalog', e.message, e.hint ?? 'check s3.endpoint, the bucket in catalog: and the credentials')] };
  }
  const checks: CheckResult[] = [await probe(repo, server, cfg)];
  const endpoint = endpointOf(cfg);
  try {
    const { date, sentAt, receivedAt } = await serverDate(cfg);
    const skew = date === undefined ? undefined : clockSkewMs(date, sentAt, receivedAt);
    checks.push(
      skew === undefined
        ? fail('clock', `${endpoint} sent no usable Date header`, 'cannot compare clocks; check the endpoint')
        : judgeClockSkew(endpoint, skew),
    );
  } catch (err) {
    checks.push(fail('clock', `cannot ask ${endpoint} for its time: ${(err as Error).message}`, 'check s3.endpoint and the TLS settings'));
  }
  return { checks, repo };
}
