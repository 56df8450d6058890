/**
 * Repository keys (see repository.ts): checked the same way by every driver, so a key that one
 * store accepts is accepted by all, and no key can name something outside the repository root or
 * collide with a driver's own in-flight and bookkeeping names.
 */

import { PgbkError } from '../errors.js';

/**
 * Names a driver may keep beside objects: posix records sha256 sums in a directory's SHA256SUMS
 * (posix/checksums.ts CHECKSUMS_FILE) and hides it from listings, so no object may be called that.
 */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['SHA256SUMS']);

function badKey(what: string, key: string, why: string): PgbkError {
  return new PgbkError('INTERNAL', `invalid repository ${what} "${key}": ${why}`);
}

function checkSegment(what: string, key: string, segment: string, partial: boolean): void {
  if (segment === '' && !partial) throw badKey(what, key, 'empty path segment');
  if (segment === '.' || segment === '..') throw badKey(what, key, `"${segment}" segment`);
  if (segment.startsWith('.')) throw badKey(what, key, 'dot-names are reserved for objects in flight');
}

/** Throw unless `key` names an object: relative, '/'-separated, no empty, '.', '..' or dot-segments. */
export function checkKey(key: string): string {
  if (key.includes('\0')) throw badKey('key', key, 'NUL byte');
  if (key.startsWith('/')) throw badKey('key', key, 'keys are relative to the repository root');
  const segments = key.split('/');
  for (const s of segments) checkSegment('key', key, s, false);
  if (RESERVED_NAMES.has(segments[segments.length - 1]!)) throw badKey('key', key, 'reserved name');
  return key;
}

/** A listing prefix: '' (everything), "dir/" or "dir/partial-name". */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  if (prefix.includes('\0')) throw badKey('prefix', prefix, 'NUL byte');
  if (prefix.startsWith('/')) throw badKey('prefix', prefix, 'prefixes are relative to the repository root');
  const segments = prefix.split('/');
  segments.forEach((s, i) => checkSegment('prefix', prefix, s, i === segments.length - 1));
  return prefix;
}

/** A tree to delete: a non-empty prefix ending in '/'. */
export function checkTreePrefix(prefix: string): string {
  if (!prefix.endsWith('/') || prefix === '/') throw badKey('tree prefix', prefix, "must be a directory ending in '/'");
  checkKey(prefix.slice(0, -1));
  return prefix;
}

/**
 * Byte order of the UTF-8 keys, the order S3 lists in. JavaScript compares UTF-16 code units,
 * which agrees except when a surrogate pair meets a character in U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  if (/[\uD800-\uFFFF]/.test(a) || /[\uD800-\uFFFF]/.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}
