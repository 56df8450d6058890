/**
 * As root, a local restore leaves the data directory owned by the user recorded in the backup
 * (PostgreSQL's), and its restore_command — `pgbk wal-fetch` reading this host's catalog — runs as
 * that user. A catalog, configuration file or pgbk installation that user cannot read shows only
 * when PostgreSQL starts ("FATAL: could not restore file …"; recovery stops there, nothing is
 * lost), long after the restore said it was done. So a root restore runs that very command once,
 * as that user, for the first segment the restored cluster will ask for, into a scratch directory
 * of that user's, removes it, and turns a failure into a warning naming the user and the reason. The restore itself is correct either way: what is missing is a permission, which the
 * DBA can grant before starting PostgreSQL.
 */

import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface WalAccessProbe {
  readonly dir: string;
  readonly node: string;
  readonly cli: string;
  readonly configPath: string;
  readonly server: string;
  /** The first segment the restored cluster replays (the backup's begin segment). */
  readonly segment: string;
}

const PROBE_TIMEOUT_MS = 60_000;

function run(cmd: string, args: readonly string[], cwd: string): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: PROBE_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 127;
      resolve({ code, stdout, stderr: stderr.trim() || (err?.message ?? '') });
    });
  });
}

/** undefined when the data directory's owner can run restore_command; else the warning to give. */
export async function probeWalAccess(p: WalAccessProbe): Promise<string | undefined> {
  const { uid, gid } = await stat(path.join(p.dir, 'PG_VERSION'));
  // PostgreSQL refuses to run as root: nobody else's access to check.
  if (uid === 0 || uid === process.getuid?.()) return undefined;
  const who = await run('id', ['-nu', String(uid)], '/');
  const user = who.stdout.trim();
  if (who.code !== 0 || user === '') {
    return `could not check that the data directory's owner (uid ${uid}, no user name: ${who.stderr}) can read the catalog: restore_command (pgbk wal-fetch) runs as that user`;
  }
  // A directory of the user's own outside the data directory, which is still root's at this
  // point and is being flushed file by file beside this probe.
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'pgbk-wal-probe-'));
  const dest = path.join(scratch, p.segment);
  try {
    await chown(scratch, uid, gid);
    const r = await run(
      'runuser',
      ['-u', user, '--', p.node, p.cli, 'wal-fetch', '--config', p.configPath, '--prefetch', '0', p.server, p.segment, dest],
      scratch,
    );
    if (r.code === 0) return undefined;
    const why = r.stderr.split('\n').find((l) => l.trim() !== '') ?? `exit ${r.code}`;
    return (
      `PostgreSQL's OS user ${user} (owner of ${p.dir}) cannot fetch WAL with the restore_command written here: ` +
      `pgbk wal-fetch ${p.segment} as ${user} failed: ${why}. PostgreSQL would stop at start-up ("could not restore file"); ` +
      `before starting it, let ${user} read the configuration and the catalog (e.g. a group both share, with g+rX on the catalog)`
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
