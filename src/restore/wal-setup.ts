/**
 * Where the restored cluster gets its WAL from — the one step of a restore that depends on where
 * it runs relative to the catalog. On this host restore_command reads the catalog directly
 * (`pgbk wal-fetch` with its fast path). On a database host reached over SSH (wal-mode.ts) it
 * fetches over SSH, or — from an object-storage catalog — reads the bucket itself with its own
 * pgbk configuration (remote-bucket-wal.ts), or the WAL is copied up front into DIR/pgbk_wal.
 */

import { readIdentity } from '../catalog/identity.js';
import { archivedWalFile, listArchivedWal, readArchivedWal } from '../catalog/wal-archive.js';
import { PgbkError } from '../errors.js';
import { plural } from '../lib/plural.js';
import { buildSpoolCleanupCommand } from '../pg/recovery-conf.js';
import { buildFastRestoreCommand } from '../wal-fetch/fast-path.js';
import type { Choice } from './choose-backup.js';
import type { TargetHost } from './host.js';
import type { RecoveryTarget } from './target.js';
import { decideWalMode, fetchCommands, walToCopy, type WalFromFlags } from './wal-mode.js';
import { bucketFetchCommands, checkBucketFetch, deriveBucketFetch, type BucketFetch } from './remote-bucket-wal.js';
import { repositoryKindOf } from '../catalog/open.js';
import { effectiveArchiveCommand } from './archive-command.js';
import { probeWalAccess } from './wal-access-probe.js';

export interface WalCommands {
  readonly restoreCommand: string;
  readonly recoveryEndCommand: string;
}

export interface WalSetup<S> {
  /** Checks on the target host, before anything is written. */
  check(host: TargetHost, server: string): Promise<void>;
  /**
   * After unpacking: the commands for postgresql.auto.conf and what the summary says. `conf` is
   * the restored postgresql.conf and postgresql.auto.conf as they came out of the backup.
   */
  configure(
    host: TargetHost,
    dir: string,
    conf: { readonly postgresqlConf: string; readonly autoConf: string },
    choice: Choice,
  ): Promise<{ readonly commands: WalCommands; readonly summary: S; readonly wrote: readonly string[] }>;
  /**
   * Started once the data directory is unpacked, beside what follows (pg_verifybackup, the flush):
   * whether the restored cluster's restore_command will work; a warning when it will not.
   */
  probe?(host: TargetHost, dir: string, choice: Choice): Promise<string | undefined>;
}

/** This host: restore_command is pgbk wal-fetch reading the catalog (fast path first). */
export function catalogWal(parts: {
  readonly node: string;
  readonly cli: string;
  readonly configPath: string;
  readonly server: string;
  readonly catalog: string;
}): WalSetup<undefined> {
  return {
    check: async () => undefined,
    configure: async () => ({
      commands: {
        restoreCommand: buildFastRestoreCommand(parts),
        recoveryEndCommand: buildSpoolCleanupCommand(parts),
      },
      summary: undefined,
      wrote: [],
    }),
    // As root the data directory belongs to PostgreSQL's user, who runs restore_command: prove that
    // user can (wal-access-probe.ts). Not as anyone else: the restored files are then the current
    // user's, who has just read the catalog.
    probe: async (host, dir, choice) =>
      host.local && process.getuid?.() === 0
        ? probeWalAccess({ ...parts, dir, segmentFile: await archivedWalFile(parts.catalog, parts.server, choice.walFrom) })
        : undefined,
  };
}

export type RemoteWalSummary =
  | { readonly mode: 'fetch'; readonly derivedFrom: 'flag' | 'archive_command'; readonly from: string; readonly restoreCommand: string }
  /** Object-storage catalog: the database host reads the bucket itself (remote-bucket-wal.ts). */
  | { readonly mode: 'bucket'; readonly from: string; readonly configPath: string; readonly restoreCommand: string }
  | { readonly mode: 'copy'; readonly why: string; readonly files: number; readonly first: string | undefined; readonly last: string | undefined };

/** The database host over SSH: fetch over SSH (--wal-from, or derived from archive_command), else copy. */
export function remoteWal(opts: {
  readonly flags: WalFromFlags;
  readonly catalog: string;
  readonly server: string;
  readonly target: RecoveryTarget;
  readonly log: (line: string) => void;
}): WalSetup<RemoteWalSummary> {
  const { flags, catalog, server, log } = opts;
  return {
    async check(host) {
      for (const [flag, file] of [
        ['--wal-identity', flags.identityFile],
        ['--wal-known-hosts', flags.knownHosts],
      ] as const) {
        if (file !== undefined && (await host.transport.stat(file))?.type !== 'file') {
          throw new PgbkError('USAGE', `restore ${flag} ${file}: no such file on ${host.transport.description}`, {
            server,
            hint: 'the WAL fetch runs on the database host: give paths there',
          });
        }
      }
    },
    async configure(host, dir, conf, choice) {
      let bucketWhy: string | undefined;
      if (flags.from === undefined && repositoryKindOf(catalog) !== 'posix') {
        const bucket = await bucketFetch(host, conf, catalog, server);
        if (typeof bucket === 'string') bucketWhy = bucket;
        else {
          const commands = bucketFetchCommands(bucket);
          log(
            `WAL: read from ${catalog} on demand by restore_command on the database host (its own pgbk --config ${bucket.configPath}, as its archive_command)`,
          );
          return { commands, summary: { mode: 'bucket', from: catalog, configPath: bucket.configPath, restoreCommand: commands.restoreCommand }, wrote: [] };
        }
      }
      const decided = decideWalMode(flags, conf, catalog, server);
      // From a bucket, why it is not read directly says more than why it is not fetched over SSH.
      const mode = decided.kind === 'copy' && bucketWhy !== undefined ? { ...decided, why: bucketWhy } : decided;
      if (mode.kind === 'fetch') {
        const commands = fetchCommands(mode);
        log(
          mode.source === 'flag'
            ? `WAL: fetched over SSH from ${mode.options.from} by restore_command on the database host (--wal-from)`
            : `WAL: fetched over SSH from ${mode.options.from}, settings derived from the backup's archive_command (pgbk wal-push --to)`,
        );
        return { commands, summary: { mode: 'fetch', derivedFrom: mode.source, from: mode.options.from, restoreCommand: commands.restoreCommand }, wrote: [] };
      }
      log(`WAL: copying it up front into ${dir}/pgbk_wal: ${mode.why} (give --wal-from ssh://USER@HOST/CATALOG to fetch on demand instead)`);
      const identity = await readIdentity(catalog, server);
      const bounded = opts.target.kind === 'lsn' || opts.target.kind === 'immediate';
      const names = walToCopy(
        await listArchivedWal(catalog, server),
        choice.walFrom,
        bounded ? choice.walTo : undefined,
        identity?.walSegmentSize ?? 16 * 1024 * 1024,
      );
      const walDir = `${dir}/pgbk_wal`;
      await host.transport.mkdir(walDir, 0o700);
      for (const name of names) await host.transport.writeFile(`${walDir}/${name}`, await readArchivedWal(catalog, server, name), 0o600);
      const segs = names.filter((n) => /^[0-9A-F]{24}$/.test(n));
      log(
        `sent ${plural(names.length, 'WAL file')} into ${walDir} (${segs.length === 0 ? 'no segments' : `${segs[0]}…${segs[segs.length - 1]}`}${bounded ? ', up to the target' : ', to the end of the archive'})`,
      );
      return {
        commands: { restoreCommand: 'cp pgbk_wal/%f %p', recoveryEndCommand: 'rm -rf pgbk_wal' },
        summary: { mode: 'copy', why: mode.why, files: names.length, first: segs[0], last: segs[segs.length - 1] },
        wrote: [walDir],
      };
    },
  };
}

/** The database host's own way to read the bucket (remote-bucket-wal.ts), or why there is none. */
async function bucketFetch(
  host: TargetHost,
  conf: { readonly postgresqlConf: string; readonly autoConf: string },
  catalog: string,
  server: string,
): Promise<BucketFetch | string> {
  const archiveCommand = effectiveArchiveCommand(conf.postgresqlConf, conf.autoConf);
  if (archiveCommand === undefined) return 'the backup has no archive_command in postgresql.conf or postgresql.auto.conf';
  const derived = deriveBucketFetch(archiveCommand);
  if (typeof derived === 'string') return derived;
  return (await checkBucketFetch(host, derived, catalog, server)) ?? derived;
}
