/**
 * As root, a local restore leaves the data directory owned by the user recorded in the backup
 * (PostgreSQL's), and its restore_command — `pgbk wal-fetch` reading this host's catalog — runs as
 * that user. A catalog or configuration file that user cannot read shows only when PostgreSQL
 * starts ("FATAL: could not restore file …"; recovery stops there, nothing is lost), long after
 * the restore said it was done. So a root restore asks, as that user (runuser, with its groups),
 * whether it can read what restore_command reads — the configuration, the stored file of the first
 * segment to replay (through every directory above it), node and pgbk — and turns a refusal into
 * a warning naming the user and the path. The restore itself is correct either way: what is
 * missing is a permission, which the DBA can grant before starting PostgreSQL.
 *
 * Only permissions, not a whole wal-fetch: running one (a Node start, reading and decoding a 16 MiB
 * segment) took ~0.2 s of CPU beside pg_verifybackup and the flush, a third of a small restore.
 */

import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';

export interface WalAccessProbe {
  readonly dir: string;
  readonly node: string;
  readonly cli: string;
  readonly configPath: string;
  /** The first segment to replay, as a path on this host (undefined: not a local file, e.g. object storage). */
  readonly segmentFile: string | undefined;
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The program itself could not be started (not installed). */
  readonly missing: boolean;
}

function run(cmd: string, args: readonly string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: '/', timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 127;
      resolve({ code, stdout, stderr: stderr.trim() || (err?.message ?? ''), missing: err?.code === 'ENOENT' });
    });
  });
}

/** sh: each argument must be readable (`-r` asks the kernel, as the user: groups and ACLs count); names the first that is not. */
const READABLE = 'for f; do [ -r "$f" ] || { printf "%s\\n" "$f"; exit 1; }; done';

/** undefined when the data directory's owner can read what restore_command reads; else the warning to give. */
export async function probeWalAccess(p: WalAccessProbe): Promise<string | undefined> {
  const { uid } = await stat(path.join(p.dir, 'PG_VERSION'));
  // PostgreSQL refuses to run as root: nobody else's access to check.
  if (uid === 0 || uid === process.getuid?.()) return undefined;
  const who = await run('id', ['-nu', String(uid)]);
  const user = who.stdout.trim();
  if (who.code !== 0 || user === '') {
    return `could not check that the data directory's owner (uid ${uid}: ${who.stderr || 'no user name'}) can read the catalog: restore_command (pgbk wal-fetch) runs as that user`;
  }
  const needed = [p.configPath, p.node, p.cli, ...(p.segmentFile === undefined ? [] : [p.segmentFile])];
  const r = await run('runuser', ['-u', user, '--', 'sh', '-c', READABLE, 'sh', ...needed]);
  if (r.code === 0) return undefined;
  if (r.missing) return `could not check that ${user} (owner of ${p.dir}) can run restore_command: runuser (util-linux) is not installed`;
  const refused = r.stdout.trim();
  if (refused === '') return `could not check that ${user} (owner of ${p.dir}) can run restore_command: ${r.stderr || `exit ${r.code}`}`;
  return (
    `PostgreSQL's OS user ${user} (owner of ${p.dir}) cannot read ${refused}, which its restore_command (pgbk wal-fetch) reads: ` +
    `PostgreSQL would stop at start-up ("could not restore file"). Before starting it, let ${user} read the configuration and the catalog ` +
    '(e.g. a group both share, with g+rX on the catalog)'
  );
}
