/**
 * The holder a lock names, as both drivers store it (posix: the lock file; S3: the lease object,
 * which adds its ttl and renewal time): one field order on disk, one tolerant reader.
 */

import type { LockHolder } from './repository.js';

/** The holder's fields in the order written (processStart only when known). */
export function holderFields(h: LockHolder): Record<string, unknown> {
  return {
    id: h.id,
    pid: h.pid,
    ...(h.processStart === undefined ? {} : { processStart: h.processStart }),
    host: h.host,
    command: h.command,
    since: h.since,
  };
}

/** The holder in a parsed lock text, or undefined when it is not one pgbk wrote. */
export function parseHolder(o: Readonly<Record<string, unknown>>): LockHolder | undefined {
  if (typeof o['id'] !== 'string' || typeof o['pid'] !== 'number' || typeof o['host'] !== 'string') return undefined;
  return {
    id: o['id'],
    pid: o['pid'],
    host: o['host'],
    command: typeof o['command'] === 'string' ? o['command'] : '?',
    since: typeof o['since'] === 'string' ? o['since'] : '?',
    ...(typeof o['processStart'] === 'string' ? { processStart: o['processStart'] } : {}),
  };
}
