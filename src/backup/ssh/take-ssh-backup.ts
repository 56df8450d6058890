/**
 * Backup method `ssh`: a file-level copy of PGDATA (and tablespaces) from the database host over
 * one SSH connection, between pg_backup_start() and pg_backup_stop() in one session, into
 * backups/<id>/data/ and backups/<id>/tablespaces/<oid>/: directories and symlinks as they are,
 * files of up to one chunk plain, longer files as `<path>.pgbk-chunks/` (incremental.ts). Files
 * unchanged since the previous backup are not read at all; the others are read by
 * `pgbk backup-agent` on the database host, which sends only chunks whose sha256 differs from the
 * previous backup's (fetch-agent.ts), or — when the agent cannot run — by a tar stream chunked
 * here (fetch-tar.ts). Equal chunks are hard links to the previous backup: each backup is
 * self-contained (deleting an older one only drops link counts). backup_label and tablespace_map
 * are written from pg_backup_stop's result; files.json records every chunk's sha256.
 * With backup.compression other than none, every stored object is a zstd frame (ZSTD_LEVEL),
 * compressed by the agent on the database host before it crosses SSH (files.json formatVersion 3).
 *
 * This file is the backup's frame (connection, session, record, backup_label, files.json); the copy
 * itself is copy-tree.ts.
 *
 * Record lifecycle as for pg_basebackup: STARTED (owner = this process) → WAITING_FOR_WAL → DONE
 * by the executor (apply/base-backup.ts). Any failure: the session is closed (PostgreSQL abandons the backup), the
 * copied files are removed, the record says FAILED with the reason — nothing half-visible.
 */

import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  backupDir,
  catalogKeys,
  createBackupRecord,
  locate,
  newBackupId,
  readIdentity,
  recordIdentity,
  repositoryKindOf,
  repositoryOf,
  writeBackupRecord,
} from '../../catalog/index.js';
import { ChunkStore } from '../../catalog/chunk-store.js';
import { isNoSpaceError, noSpaceError } from '../../catalog/no-space.js';
import { PgbkError, toPgbkError } from '../../errors.js';
import { sha256Hex } from '../../lib/checksum.js';
import { mark } from '../../lib/profile.js';
import { processIdentity } from '../../lib/process-identity.js';
import { endLsnToSegmentName, lsnToSegmentName, parseLsn } from '../../pg/lsn.js';
import { type BackupRecord, failedBackup, type StartedBackup } from '../../model/types.js';
import { connectServer } from '../../transport/connect.js';
import type { Transport } from '../../transport/transport.js';
import { allocateBackupId } from '../lifecycle.js';
import { settleAfterFailure } from '../beside-copy.js';
import type { BackupContext, TakeHooks } from '../context.js';
import { startAgent, type StartedAgent } from './fetch-agent.js';
import { FILE_LIST } from './stored-file-list.js';
import { syncBackupTree } from './sync-tree.js';
import { PgClientSession } from './pg-client-session.js';
import { psqlServerArgs } from './postmaster-pid.js';
import { PsqlSession } from './psql-session.js';
import { backupStart, backupStop, waitForArchived, labelStartLsn, labelTimeline, listTablespaces, readFacts, type BackupSession } from './session.js';
import { copyTree, type Destination, previousBackup, type StartPoint, startWalChanges, writeNamed } from './copy-tree.js';
import type { WalChangesReader } from './wal-changes.js';
import { refuseBackupWithoutArchiving } from '../archiving-preflight.js';

export const MANIFEST_FILE = FILE_LIST;

async function openSession(ctx: BackupContext, transport: Transport): Promise<BackupSession> {
  const server = ctx.server;
  if (server.connection !== undefined) return PgClientSession.open(server.connection);
  return new PsqlSession(transport, await psqlServerArgs(transport, server.ssh?.psqlConnection, server.pgdata), server.name);
}

/** The server's timeline, page size and relation segment size right after pg_backup_start (undefined when unreadable: no shortcuts). */
async function startPoint(session: BackupSession, startLsn: string): Promise<StartPoint> {
  try {
    // Asked so that it cannot fail (a failed query could end a psql session mid-backup).
    const [row] = await session.query(
      "SELECT CASE WHEN has_function_privilege('pg_control_checkpoint()', 'execute') THEN (SELECT timeline_id FROM pg_control_checkpoint())::text ELSE '' END, current_setting('block_size'), (SELECT setting FROM pg_settings WHERE name = 'segment_size' AND unit = current_setting('block_size')::int / 1024 || 'kB')",
    );
    const timeline = Number(row?.[0]);
    const pageSize = Number(row?.[1]);
    const segmentBlocks = Number(row?.[2] || 'NaN');
    return {
      startLsn,
      timeline: Number.isInteger(timeline) && timeline > 0 ? timeline : undefined,
      pageSize: Number.isInteger(pageSize) && pageSize > 0 ? pageSize : undefined,
      segmentBlocks: Number.isInteger(segmentBlocks) && segmentBlocks > 0 ? segmentBlocks : undefined,
    };
  } catch {
    return { startLsn, timeline: undefined, pageSize: undefined, segmentBlocks: undefined };
  }
}

/**
 * Take one `ssh` backup; returns the final record (DONE when its WAL is archived already). Once
 * the server has archived the end segment, hooks.endSegmentArchived (apply archives incoming/)
 * runs beside the rest: backup_label, files.json, the directories' fsync, the record, closing SSH.
 */
export async function takeSshBackup(ctx: BackupContext, slot: string, hooks: TakeHooks = {}): Promise<BackupRecord> {
  const server = ctx.server;
  if (server.pgdata === undefined) {
    throw new PgbkError('CONFIG', 'backup method ssh needs pgdata (the data directory on the database host)', { server: server.name });
  }
  mark('process start');
  // The cluster this catalog knows: its previous backup and the WAL since are read while SSH
  // connects and the backup starts (used once the server's facts confirm the same cluster).
  const known = readIdentity(ctx.catalog, server.name).catch(() => undefined);
  const knownPrev = known.then((id) => (id === undefined ? undefined : previousBackup(ctx, id.systemIdentifier)));
  knownPrev.catch(() => undefined);
  const knownWal = Promise.all([known, knownPrev]).then(([id, p]) => (id === undefined ? undefined : startWalChanges(ctx, p, id.walSegmentSize)));
  knownWal.catch(() => undefined);
  const transport = await connectServer(server);
  mark('ssh connect');
  // Started now, so that its start-up overlaps pg_backup_start and the listing.
  let agent: StartedAgent | undefined = startAgent(
    transport,
    (server.ssh?.pgbk ?? 'pgbk').split(' ').filter((s) => s !== ''),
  );
  let session: BackupSession | undefined;
  let record: BackupRecord | undefined;
  /** The WAL summary this backup reads (startWalChanges), once the cluster is known. */
  let walEarly: Promise<WalChangesReader | undefined> | undefined;
  // The executor's work beside the end of the copy (TakeHooks), once the end segment is archived.
  let beside: Promise<void> | undefined;
  let claimed: StartedBackup | undefined;
  let dest: Destination | undefined;
  /** For messages: the backup's directory or its prefix on object storage. */
  let dir: string | undefined;
  try {
    session = await openSession(ctx, transport);
    const facts = await readFacts(session);
    mark('sql session and facts');
    if (facts.dataDirectory !== undefined && path.resolve(facts.dataDirectory) !== path.resolve(server.pgdata)) {
      throw new PgbkError('CONFIG', `pgdata is ${server.pgdata}, but the server's data_directory is ${facts.dataDirectory}`, { server: server.name });
    }
    refuseBackupWithoutArchiving(server, facts);
    ctx.identity = await recordIdentity(ctx.catalog, server.name, {
      systemIdentifier: facts.systemIdentifier,
      pgVersion: facts.pgVersion,
      walSegmentSize: facts.walSegmentSize,
      firstContact: new Date().toISOString(),
    });
    const started = (id: string, beginTime: string): StartedBackup => ({
      formatVersion: 1,
      id,
      server: server.name,
      slot,
      status: 'STARTED',
      method: 'ssh',
      pgVersion: facts.pgVersion,
      systemIdentifier: facts.systemIdentifier,
      beginTime,
      // A chunk store keeps zstd frames only.
      compression: server.backup.compression === 'none' && repositoryKindOf(ctx.catalog) === 'posix' ? 'none' : 'zstd',
      keep: 'none',
      owner: { ...processIdentity(), host: hostname(), startedAt: beginTime },
    });
    if (repositoryKindOf(ctx.catalog) === 'posix') {
      const id = await allocateBackupId(ctx);
      dir = backupDir(ctx.catalog, server.name, id);
      dest = { kind: 'dir', dir };
      claimed = started(id, new Date().toISOString());
      record = claimed;
      await writeBackupRecord(ctx.catalog, claimed);
    } else {
      // No directories to claim an id with: the STARTED record is created only if absent.
      const repo = await repositoryOf(ctx.catalog);
      for (let attempt = 0; attempt < 5 && claimed === undefined; attempt++) {
        const begin = new Date();
        const claim = started(newBackupId(begin), begin.toISOString());
        if ((await createBackupRecord(ctx.catalog, claim)) === 'created') claimed = claim;
        else await sleep(1000 - (Date.now() % 1000) + 5);
      }
      if (claimed === undefined) throw new PgbkError('CATALOG', 'could not allocate a backup id (a backup.json exists each second)', { server: server.name });
      record = claimed;
      const prefix = catalogKeys.backup(server.name, claimed.id);
      dir = locate(ctx.catalog, prefix);
      dest = { kind: 'store', repo, prefix, store: new ChunkStore(repo, server.name), where: dir };
    }
    const id = claimed.id;
    ctx.log(`${server.name}: ssh backup ${id} started over ${transport.description} (slot ${slot})`);

    mark('record STARTED');
    const id0 = await known;
    const sameCluster = id0 !== undefined && id0.systemIdentifier === facts.systemIdentifier && id0.walSegmentSize === facts.walSegmentSize;
    const previousRead = sameCluster ? knownPrev : previousBackup(ctx, facts.systemIdentifier);
    previousRead.catch(() => undefined); // awaited in copyTree; never unhandled if the backup fails first
    // The WAL since the previous backup, read while pg_backup_start and the listing run.
    walEarly = sameCluster ? knownWal : previousRead.then((p) => startWalChanges(ctx, p, facts.walSegmentSize));
    walEarly.catch(() => undefined);
    const startLsn = await backupStart(session, facts.pgVersion, `pgbk ${server.name} ${id}`, server.backup.fastCheckpoint);
    mark('pg_backup_start');
    const tablespaces = await listTablespaces(session);
    const here = await startPoint(session, startLsn);
    mark('tablespaces, timeline');
    const backupSession = session; // idle during the copy: the WAL summary may wait on it for a segment
    const wal = { early: walEarly, pgVersion: facts.pgVersion, waitArchived: (name: string, ms: number) => waitForArchived(backupSession, name, ms) };
    const copied = await copyTree(ctx, transport, dest, previousRead, tablespaces, here, agent, wal);
    const stop = await backupStop(session, facts.pgVersion);
    mark('pg_backup_stop');
    const timeline = labelTimeline(stop.labelFile);
    const beginLsn = labelStartLsn(stop.labelFile);
    const segSize = facts.walSegmentSize;
    const endWal = endLsnToSegmentName(parseLsn(stop.lsn), timeline, segSize);
    // backup.archiveTimeout bounds the wait; the data is complete, so the backup is not failed for
    // it: it stays WAITING_FOR_WAL and becomes DONE once its WAL reaches the archive.
    const archiveWaitMs = server.backup.archiveTimeoutSeconds * 1000;
    if (!(await waitForArchived(session, endWal, archiveWaitMs))) {
      ctx.log(
        `${server.name}: ${endWal} not archived by the server within ${server.backup.archiveTimeoutSeconds} s (backup.archiveTimeout); the backup stays WAITING_FOR_WAL until it is`,
      );
    } else {
      beside = hooks.endSegmentArchived?.();
      beside?.catch(() => undefined); // awaited at the end: never an unhandled rejection meanwhile
    }
    mark('wait for the end segment archived');
    await writeNamed(dest, 'data/backup_label', stop.labelFile, 0o600);
    if (stop.spcmapFile !== '') await writeNamed(dest, 'data/tablespace_map', stop.spcmapFile, 0o600);
    const manifestText = copied.manifestText;
    await writeNamed(dest, MANIFEST_FILE, manifestText, 0o640);
    mark('backup_label, files.json');
    // Every copied file durable before the record says the data is complete: the files were
    // flushed as they were written; their directories' entries (and the links) now. (An object
    // store's puts are durable once acknowledged.)
    const localDir = dest.kind === 'dir' ? dest.dir : undefined;
    if (localDir !== undefined) {
      await syncBackupTree(localDir, copied.roots, []).catch((err: unknown) => {
        throw new PgbkError('CATALOG', `cannot make ${localDir} durable: ${(err as Error).message}`, { server: server.name, path: localDir });
      });
    }
    mark(`fsync of the tree's directories (${copied.written} files flushed as written)`);

    const { owner: _owner, ...rest } = claimed;
    record = {
      ...rest,
      status: 'WAITING_FOR_WAL',
      timeline,
      beginLsn,
      endLsn: stop.lsn,
      beginWal: lsnToSegmentName(parseLsn(beginLsn), timeline, segSize),
      endWal,
      endTime: new Date().toISOString(),
      sizes: { data: copied.copiedBytes + copied.reusedBytes, stored: copied.storedBytes },
      copiedBytes: copied.copiedBytes,
      reusedBytes: copied.reusedBytes,
      fileCount: copied.fileCount,
      ...(copied.reusedFrom === undefined ? {} : { reusedFrom: copied.reusedFrom }),
      checksums: { [MANIFEST_FILE]: sha256Hex(manifestText), 'data/backup_label': sha256Hex(stop.labelFile) },
    };
    await writeBackupRecord(ctx.catalog, record);
    mark('record WAITING_FOR_WAL');
    ctx.log(
      `${server.name}: ssh backup ${id}: ${copied.fileCount} files, ${copied.copiedBytes} bytes stored new${copied.storedBytes !== copied.copiedBytes ? ` (${copied.storedBytes} compressed)` : ''}, ${copied.reusedBytes} reused${copied.reusedFrom ? ` from ${copied.reusedFrom}` : ''}${copied.walSkipped > 0 ? ` (${copied.walSkipped} chunks unread: the WAL since ${copied.reusedFrom ?? 'the previous backup'} does not touch them)` : ''}${copied.lsnSkipped > 0 ? ` (${copied.lsnSkipped} chunks by page LSN, unhashed)` : ''}, ${copied.transferredBytes} bytes transferred`,
    );
    if (copied.walNotUsed !== undefined) ctx.log(`${server.name}: ssh backup ${id}: changed relation files read whole: ${copied.walNotUsed}`);
  } catch (err) {
    // Measured before the partial tree is removed below: the free space when the disk filled up.
    await settleAfterFailure(ctx, record?.id ?? 'being taken', beside);
    const e = isNoSpaceError(err)
      ? await noSpaceError(err, {
          server: server.name,
          file: (err as NodeJS.ErrnoException).path ?? dir ?? ctx.catalog,
          ...(record === undefined ? {} : { what: `backup ${record.id}` }),
        })
      : toPgbkError(err, { server: server.name });
    await agent?.abandon().catch(() => undefined);
    agent = undefined;
    await session?.close().catch(() => undefined); // ends the session: PostgreSQL abandons the backup
    session = undefined;
    if (record !== undefined && dest !== undefined) {
      // Nothing half-visible: the partial tree goes, the record stays as FAILED with the reason.
      // (In a chunk store the chunks it stored stay until the sweep finds nothing refers to them.)
      if (dest.kind === 'dir') {
        await rm(path.join(dest.dir, 'data'), { recursive: true, force: true }).catch(() => undefined);
        await rm(path.join(dest.dir, 'tablespaces'), { recursive: true, force: true }).catch(() => undefined);
        await rm(path.join(dest.dir, MANIFEST_FILE), { force: true }).catch(() => undefined);
      } else {
        const { repo, prefix } = dest;
        await repo.delete(['data/backup_label', 'data/tablespace_map', MANIFEST_FILE].map((n) => `${prefix}${n}`)).catch(() => undefined);
      }
      const failed = failedBackup(record, e.message, new Date().toISOString());
      await writeBackupRecord(ctx.catalog, failed).catch((werr: unknown) => {
        ctx.log(`${server.name}: cannot record backup ${failed.id} as FAILED: ${(werr as Error).message}`);
      });
    }
    throw e;
  } finally {
    // An early WAL read not used (another cluster, or the backup failed) stops: a daemon takes
    // backup after backup in one process.
    for (const r of [knownWal, walEarly]) void r?.then((reader) => reader?.abandon()).catch(() => undefined);
    await agent?.abandon().catch(() => undefined);
    await session?.close().catch(() => undefined);
    await transport.close();
    mark('close');
  }
  // Its error (WAL not archived from incoming/) comes out here, after the record: not the backup's.
  await beside;
  return record;
}
