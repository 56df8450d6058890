import { PgbkError } from '../errors.js';
import type { Desired, ServerConfig } from './resolved.js';

/** The configured servers a command acts on: all of them, or the ones named (unknown names are errors). */
export function selectServers(desired: Desired, names: readonly string[] | undefined): ServerConfig[] {
  if (names === undefined || names.length === 0) return [...desired.servers];
  for (const n of names) {
    if (!desired.servers.some((s) => s.name === n)) {
      throw new PgbkError('USAGE', `unknown server "${n}" (configured: ${desired.servers.map((s) => s.name).join(', ')})`);
    }
  }
  return desired.servers.filter((s) => names.includes(s.name));
}
