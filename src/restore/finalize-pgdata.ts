/**
 * Turning an unpacked backup into a data directory PostgreSQL can recover, on the target host:
 * put the tablespaces in place, verify every file against PostgreSQL's own backup_manifest
 * (pg_verifybackup), remove what must not survive into the restored cluster, and hand the
 * directories pgbk made to the data directory's owner — through the host's Transport (node:fs on
 * this host, one command per step over SSH).
 */

import { PgbkError } from '../errors.js';
import { majorOf } from '../pg/pg-bin.js';
import { where, type TargetHost } from './host.js';
import { formatTablespaceMap, type TablespaceEntry } from './tablespace-map.js';

export interface ManifestCheck {
  /** Recompute every file's CRC32C (pg_verifybackup without --skip-checksums). */
  readonly checksums: boolean;
}

/**
 * pg_tblspc/<oid> becomes a symlink to where each tablespace was restored, before verification
 * (pg_verifybackup follows these links into the tablespaces). The backup's own tablespace_map
 * names the source's directories — on the same host those belong to the running source cluster —
 * so it must not survive as it is: settleTablespaceMap.
 */
export async function linkTablespaces(host: TargetHost, pgdata: string, tablespaces: readonly TablespaceEntry[]): Promise<void> {
  if (tablespaces.length === 0) return;
  await host.transport.mkdir(`${pgdata}/pg_tblspc`, 0o700);
  for (const t of tablespaces) await host.transport.symlink(t.location, `${pgdata}/pg_tblspc/${t.oid}`);
}

/**
 * What becomes of tablespace_map once the links stand, each way as it always was. On this host
 * (`pgbk restore`) it is removed and the links made by linkTablespaces are what PostgreSQL uses.
 * Over SSH (`restore --remote`) it is rewritten with the restored locations, and PostgreSQL
 * recreates the links from it when recovery starts (renaming it tablespace_map.old). Returns the
 * file written, if any, for the caller to hand to the data directory's owner.
 */
export async function settleTablespaceMap(host: TargetHost, pgdata: string, tablespaces: readonly TablespaceEntry[]): Promise<string[]> {
  if (tablespaces.length === 0) return [];
  const mapFile = `${pgdata}/tablespace_map`;
  if (host.local) {
    await host.transport.remove([mapFile]);
    return [];
  }
  await host.transport.writeFile(mapFile, formatTablespaceMap(tablespaces), 0o600);
  return [mapFile];
}

/**
 * Run pg_verifybackup on the host, found as src/pg/pg-bin.ts looks for PostgreSQL programs:
 * $PGBK_PG_BINDIR, else the oldest /usr/lib/postgresql/<major or newer>/bin, else PATH. Shell
 * built-ins only, then exec: one program started, as before. Exit 127 and a marker: not there.
 */
const RUN_VERIFYBACKUP = [
  'major=$1; shift; name=pg_verifybackup; bin=',
  'if [ -n "${PGBK_PG_BINDIR:-}" ]; then bin=$PGBK_PG_BINDIR/$name; [ -x "$bin" ] || { echo "$name not found in PGBK_PG_BINDIR ($PGBK_PG_BINDIR)" >&2; exit 2; }',
  'else',
  '  best=',
  '  for p in /usr/lib/postgresql/*/bin/$name; do',
  '    [ -x "$p" ] || continue; d=${p#/usr/lib/postgresql/}; d=${d%%/*}',
  '    case $d in ""|*[!0-9]*) continue ;; esac',
  '    if [ "$d" -ge "$major" ] && { [ -z "$best" ] || [ "$d" -lt "$best" ]; }; then best=$d; fi',
  '  done',
  '  if [ -n "$best" ]; then bin=/usr/lib/postgresql/$best/bin/$name; else bin=$(command -v "$name") || { echo "pgbk: $name not found" >&2; exit 127; }; fi',
  'fi',
  'exec "$bin" "$@"',
].join('\n');

/**
 * pg_verifybackup checks every file of the backup manifest and reports extra or missing files.
 * --no-parse-wal: the WAL is in the archive, not in pg_wal. It ignores, by design, the files a
 * restore edits afterwards (postgresql.auto.conf, recovery.signal, pg_wal) and backup_manifest.
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
 *
 * `manifest` is a path on the host. Returns false when the host has no pg_verifybackup: only
 * possible over SSH (on this host its absence is an error, as it always was).
 */
export async function verifyAgainstManifest(
  host: TargetHost,
  pgdata: string,
  manifest: string,
  pgVersion: number,
  server: string,
  check: ManifestCheck = { checksums: true },
): Promise<boolean> {
  const args = ['--no-parse-wal', '--quiet', ...(check.checksums ? [] : ['--skip-checksums']), '--manifest-path', manifest, pgdata];
  const r = await host.transport.run(['sh', '-c', RUN_VERIFYBACKUP, 'sh', String(majorOf(pgVersion)), ...args]);
  if (r.code === 127 && /^pgbk: pg_verifybackup not found$/m.test(r.stderr)) {
    if (!host.local) return false;
    throw new PgbkError('PG', 'cannot run pg_verifybackup: not found', { server, hint: 'install the PostgreSQL server programs or set PGBK_PG_BINDIR' });
  }
  if (r.code === 2 && /not found in PGBK_PG_BINDIR/.test(r.stderr)) throw new PgbkError('CONFIG', r.stderr.trim(), { server });
  if (r.code === null)
    throw new PgbkError('NETWORK', `pg_verifybackup on ${host.transport.description} did not finish: ${r.stderr.trim() || 'connection lost'}`, { server });
  if (r.code !== 0) {
    const lines = `${r.stdout.toString('utf8')}${r.stderr}`.trim().split('\n');
    const shown = lines.slice(0, 20).join('\n  ') + (lines.length > 20 ? `\n  … ${lines.length - 20} more lines` : '');
    throw new PgbkError('CATALOG', `the restored files do not match the backup manifest (pg_verifybackup):\n  ${shown}`, {
      server,
      path: where(host, pgdata),
      hint: 'the stored backup is damaged; restore from another backup',
    });
  }
  return true;
}

/**
 * Files that describe a running or standby server, not the backup: a stale postmaster.pid would
 * stop PostgreSQL from starting; old WAL in pg_wal would be replayed instead of the archive's
 * (pg_basebackup -X none leaves pg_wal empty, but a hand-made backup may not); signal files are
 * rewritten by the recovery configuration; a wal-fetch spool or pgbk_wal of an earlier pgbk
 * restore must not be trusted (the fast path only ever sees files this restore's own worker
 * verified: spool.ts); backup_manifest was only there for pg_verifybackup. pg_wal itself and
 * pg_wal/archive_status must exist.
 */
const RUNTIME_FILES = ['.pgbk-spool', 'pgbk_wal', 'postmaster.pid', 'postmaster.opts', 'recovery.signal', 'standby.signal', 'recovery.conf', 'backup_manifest'];

export async function removeRuntimeFiles(host: TargetHost, pgdata: string): Promise<void> {
  const t = host.transport;
  await t.remove(RUNTIME_FILES.map((f) => `${pgdata}/${f}`));
  const walDir = `${pgdata}/pg_wal`;
  const status = `${walDir}/archive_status`;
  if ((await t.stat(status))?.type !== 'dir') await t.mkdir(status, 0o700);
  await t.remove((await t.list(walDir)).filter((e) => e.name !== 'archive_status').map((e) => `${walDir}/${e.name}`));
  await t.remove((await t.list(status)).map((e) => `${status}/${e.name}`));
}

/**
 * As root, tar keeps each file's owner from the archive (the source server's postgres user); what
 * pgbk created or wrote itself gets the same owner, or PostgreSQL could not enter or read it.
 * `recursive` only for what pgbk filled itself (pgbk_wal), never for the unpacked tree.
 */
export async function giveToDataOwner(host: TargetHost, pgdata: string, paths: readonly string[], recursive = false): Promise<void> {
  if (paths.length > 0) await host.transport.chownLike(`${pgdata}/PG_VERSION`, paths, recursive);
}

/**
 * Flush what the restore wrote (every file and directory under the data directory and each
 * tablespace location) before reporting success, as the `ssh` method's tree copy and pgBackRest's
 * restore do: GNU tar does not fsync, and a crash soon after a restore that said it was done must
 * not leave a data directory with holes. `sync FILE…` (coreutils) fsyncs each path it is given,
 * directories included; find does not follow pg_tblspc's links (the locations come separately).
 */
export async function flushRestored(host: TargetHost, roots: readonly string[], server: string): Promise<void> {
  if (roots.length === 0) return;
  const r = await host.transport.run(['find', ...roots, '(', '-type', 'f', '-o', '-type', 'd', ')', '-exec', 'sync', '--', '{}', '+']);
  if (r.code !== 0) {
    throw new PgbkError(
      'CATALOG',
      `cannot flush the restored files to disk on ${host.transport.description}: ${r.stderr.trim() || `exit ${r.code ?? 'lost'}`}`,
      {
        server,
        path: where(host, roots[0]!),
      },
    );
  }
}
