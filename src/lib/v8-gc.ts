/**
 * V8's gc() for code that knows when the memory it just let go of is garbage, without
 * --expose-gc on the command line: pgbk is started as `node cli.js` (or its bin), so the flag is
 * set at run time and read when a new context is made (~3 ms, once per process, on first use).
 * undefined when this V8 does not allow it; callers then simply do without.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type Gc = (opts?: { type: 'minor' | 'major'; execution?: 'sync' }) => void;

let exposed: Gc | null | undefined;

export function exposedGc(): Gc | undefined {
  if (exposed === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as unknown;
      exposed = typeof gc === 'function' ? (gc as Gc) : null;
    } catch {
      exposed = null;
    }
  }
  return exposed ?? undefined;
}
