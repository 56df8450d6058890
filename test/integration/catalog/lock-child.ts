/**
 * A second process for the lock contract tests: argv = driver spec (JSON), lock key, ttl ms,
 * hold ms. It tries the lock once, prints one JSON line with the outcome, holds the lease for
 * `hold ms` (or until killed), releases it and exits.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { processIdentity } from '../../../src/lib/process-identity.js';
import { openDriver, type DriverSpec } from './drivers.js';

const [specJson, key, ttl, hold] = process.argv.slice(2);
if (specJson === undefined || key === undefined || ttl === undefined || hold === undefined) {
  console.error('usage: lock-child SPEC KEY TTL_MS HOLD_MS');
  process.exit(2);
}
const repo = await openDriver(JSON.parse(specJson) as DriverSpec);
const holder = {
  id: randomBytes(8).toString('hex'),
  ...processIdentity(), // pid and process start, as pgbk's own holders record them
  host: os.hostname(),
  command: 'lock-child',
  since: new Date().toISOString(),
};
const attempt = await repo.tryLock(key, holder, { ttlMs: Number(ttl) });
process.stdout.write(`${JSON.stringify(attempt.acquired ? { acquired: true, holder } : { acquired: false, holder: attempt.holder })}\n`);
if (attempt.acquired) {
  await sleep(Number(hold));
  await attempt.lease.release();
}
