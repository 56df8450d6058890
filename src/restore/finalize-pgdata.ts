/**
 * Turning an unpacked backup into a data directory PostgreSQL can recover: verify every file
 * against PostgreSQL's own backup_manifest (pg_verifybackup, per-file CRC32C and sizes), put the
 * tablespaces in place, and remove what must not survive into the restored cluster.
 */

import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import { findPgBinary } from '../pg/pg-bin.js';

export interface ManifestCheck {
  /** Recompute every file's CRC32C (pg_verifybackup without --skip-checksums). */
  readonly checksums: boolean;
}

/**
 * pg_verifybackup checks every file of the backup manifest and reports extra or missing files.
 * --no-parse-wal: the WAL is in the archive, not in pg_wal. It ignores, by design, the files a
 * restore edits afterwards (postgresql.auto.conf, recovery.signal, pg_wal).
 *
 * By default with --skip-checksums: it still checks the manifest's own checksum, that every file
 * it lists exists with its recorded size, and that no other file exists. The per-file CRC32C pass
 * is left out because it is redundant with what the restore has just proven: each stored tar was
 * read in full and matched the sha256 recorded in backup.json when the backup was written, and
 * GNU tar extracted those exact bytes (the files are still in the page cache, so re-reading them
 * could not detect a disk fault anyway). What the CRC pass would add is a check that the backup as
 * *written* matched the server's manifest — a property of the backup, not of this restore, which
 * `pgbk verify` checks (it unpacks and runs the full pg_verifybackup) without holding up a
 * restore; `pgbk restore --verify-checksums` does it here too. The CRC pass re-reads the whole
 * cluster and was ~30-45% of a restore's wall time (pgbench -s 50: 0.6 s of ~1.9 s).
 */
export async function verifyAgainstManifest(
  pgdata: string,
  manifest: string,
  pgVersion: number,
  server: string,
  check: ManifestCheck = { checksums: true },
): Promise<void> {
  const bin = findPgBinary('pg_verifybackup', pgVersion);
  const args = ['--no-parse-wal', '--quiet', ...(check.checksums ? [] : ['--skip-checksums']), '--manifest-path', manifest, pgdata];
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new PgbkError('PG', `cannot run ${bin}: ${err.message}`, { server })));
    child.once('close', (c) => resolve(c));
  });
  if (code !== 0) {
    const lines = out.trim().split('\n');
    const shown = lines.slice(0, 20).join('\n  ') + (lines.length > 20 ? `\n  … ${lines.length - 20} more lines` : '');
    throw new PgbkError('CATALOG', `the restored files do not match the backup manifest (pg_verifybackup):\n  ${shown}`, {
      server,
      path: pgdata,
      hint: 'the stored backup is damaged; restore from another backup',
    });
  }
}

/**
 * A tablespace restored into `location`: pg_tblspc/<oid> becomes a symlink to it. With -Ft backups
 * PostgreSQL would recreate the links from tablespace_map at start-up, pointing at the *original*
 * locations — on the same host those belong to the running source cluster — so the map is removed
 * (after verification, see removeTablespaceMap) and our links stand.
 */
export async function linkTablespace(pgdata: string, oid: string, location: string): Promise<void> {
  await mkdir(path.join(pgdata, 'pg_tblspc'), { recursive: true, mode: 0o700 });
  const link = path.join(pgdata, 'pg_tblspc', oid);
  await rm(link, { force: true, recursive: true });
  await symlink(location, link);
}

export async function removeTablespaceMap(pgdata: string): Promise<void> {
  await rm(path.join(pgdata, 'tablespace_map'), { force: true });
}

/**
 * Files that describe a running or standby server, not the backup: a stale postmaster.pid would
 * stop PostgreSQL from starting; old WAL in pg_wal would be replayed instead of the archive's
 * (pg_basebackup -X none leaves pg_wal empty, but a hand-made backup may not); signal files are
 * rewritten by the recovery configuration. pg_wal itself and pg_wal/archive_status must exist.
 */
export async function removeRuntimeFiles(pgdata: string): Promise<string[]> {
  const removed: string[] = [];
  // A backup of a cluster that was itself restored by pgbk may carry its wal-fetch spool: the
  // fast path must only ever see files this restore's own worker verified (spool.ts).
  await rm(path.join(pgdata, '.pgbk-spool'), { recursive: true, force: true });
  for (const f of ['postmaster.pid', 'postmaster.opts', 'recovery.signal', 'standby.signal', 'recovery.conf']) {
    const p = path.join(pgdata, f);
    try {
      await rm(p);
      removed.push(f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  const walDir = path.join(pgdata, 'pg_wal');
  await mkdir(walDir, { recursive: true, mode: 0o700 });
  for (const e of await readdir(walDir)) {
    if (e === 'archive_status') continue;
    await rm(path.join(walDir, e), { recursive: true, force: true });
    removed.push(`pg_wal/${e}`);
  }
  const status = path.join(walDir, 'archive_status');
  await mkdir(status, { recursive: true, mode: 0o700 });
  for (const e of await readdir(status)) {
    await rm(path.join(status, e), { force: true });
    removed.push(`pg_wal/archive_status/${e}`);
  }
  return removed;
}
