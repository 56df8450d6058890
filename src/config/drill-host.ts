/** drill.host (issue 14): the drill host over SSH, ssh://USER@HOST[:PORT]. */

import type { DrillHost } from './resolved.js';

/** ssh://USER@HOST[:PORT] ([IPv6] allowed); undefined when malformed (check-semantics.ts reports it with file:line). */
export function parseDrillHost(url: string): Omit<DrillHost, 'identityFile' | 'knownHosts'> | undefined {
  const m = /^ssh:\/\/([^@/\s:]+)@(\[[^\]\s]+\]|[^:/\s@[\]]+)(?::(\d{1,5}))?$/.exec(url);
  if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
  const port = m[3] === undefined ? 22 : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ''), port, url };
}
