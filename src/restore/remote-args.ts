/**
 * The command-line part of `restore --remote`: the SSH target and the flags only a remote restore
 * uses (--wal-*, --db-pgbk, repeatable --tablespace-dir), taken out before the arguments shared
 * with a local restore are parsed (src/cli/restore.ts).
 */

import path from 'node:path';
import { PgbkError } from '../errors.js';
import { checkWalFlags, type WalFromFlags } from './wal-mode.js';

export interface RemoteSpec {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly identityFile?: string;
  readonly knownHosts?: string;
  /** --wal-from and friends, --db-pgbk. */
  readonly wal?: WalFromFlags;
  /** --tablespace-dir values (DIR, or OID=DIR; repeatable). */
  readonly tablespaceDirs?: readonly string[];
}

const WAL_FLAGS: Readonly<Record<string, keyof WalFromFlags>> = {
  '--wal-from': 'from',
  '--wal-identity': 'identityFile',
  '--wal-known-hosts': 'knownHosts',
  '--wal-remote-pgbk': 'remotePgbk',
  '--db-pgbk': 'dbPgbk',
};

/** Take --remote and the flags only it uses out of restore's arguments. */
export function splitRemoteArgs(args: readonly string[]): { rest: string[]; remote: RemoteSpec | undefined } {
  const rest: string[] = [];
  let remote: string | undefined;
  let identityFile: string | undefined;
  let knownHosts: string | undefined;
  const wal: { -readonly [K in keyof WalFromFlags]: WalFromFlags[K] } = {};
  const tablespaceDirs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const take = (): string => {
      const v = args[i + 1];
      if (v === undefined) throw new PgbkError('USAGE', `restore: ${a} needs a value`);
      i++;
      return v;
    };
    const walKey = WAL_FLAGS[a];
    if (a === '--remote') remote = take();
    else if (a === '--identity') identityFile = take();
    else if (a === '--known-hosts') knownHosts = take();
    else if (walKey !== undefined) wal[walKey] = take();
    else if (a === '--tablespace-dir') tablespaceDirs.push(take());
    else rest.push(a);
  }
  if (remote === undefined) {
    if (identityFile !== undefined || knownHosts !== undefined) throw new PgbkError('USAGE', 'restore: --identity and --known-hosts go with --remote');
    const walGiven = Object.keys(WAL_FLAGS).filter((f) => args.includes(f));
    if (walGiven.length > 0) throw new PgbkError('USAGE', `restore: ${walGiven.join(', ')} go with --remote (a local restore reads the catalog directly)`);
    // A local restore parses --tablespace-dir itself.
    return { rest: args.slice(), remote: undefined };
  }
  const m = /^([^@\s]+)@(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$/.exec(remote);
  if (m === null || m[1] === undefined || m[2] === undefined) throw new PgbkError('USAGE', `restore: --remote ${remote}: expected USER@HOST[:PORT]`);
  checkWalFlags(wal);
  return {
    rest,
    remote: {
      user: m[1],
      host: m[2].replace(/^\[|\]$/g, ''),
      port: m[3] === undefined ? 22 : Number(m[3]),
      ...(identityFile === undefined ? {} : { identityFile: path.resolve(identityFile) }),
      ...(knownHosts === undefined ? {} : { knownHosts: path.resolve(knownHosts) }),
      ...(Object.keys(wal).length === 0 ? {} : { wal }),
      ...(tablespaceDirs.length === 0 ? {} : { tablespaceDirs }),
    },
  };
}
