import { hostname } from 'node:os';
import { backupDir, writeBackupRecord } from '../catalog/index.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { processIdentity } from '../lib/process-identity.js';
import { waitForArchivedWal } from '../pg/archiver.js';
import { runBaseBackup } from '../pg/basebackup.js';
import { parseBaseBackupProgress } from '../pg/basebackup-progress.js';
import type { Progress } from '../lib/progress.js';
import { endLsnToSegmentName, lsnToSegmentName, parseLsn } from '../pg/lsn.js';
import { probeServer, type ServerFacts } from '../pg/probe.js';
import { type BackupRecord, failedBackup, type StartedBackup } from '../model/types.js';
import { withRetry } from '../lib/retry.js';
import type { BackupContext, TakeHooks } from './context.js';
import { allocateBackupId, checksumAndSyncStoredFiles } from './lifecycle.js';
import { mark } from '../lib/profile.js';
import { refuseBackupWithoutArchiving } from './archiving-preflight.js';
import { settleAfterFailure } from './beside-copy.js';

/** The connection and the server's facts, checked against the catalog's identity. */
export async function probeForBaseBackup(ctx: BackupContext): Promise<{ readonly conninfo: string; readonly facts: ServerFacts }> {
  const server = ctx.server;
  if (server.connection === undefined) {
    throw new PgbkError('CONFIG', 'backup method basebackup needs `connection` (a libpq conninfo)', { server: server.name });
  }
  const conninfo = server.connection;
  const facts = ctx.facts ?? (await withRetry(() => probeServer(conninfo), { log: ctx.log }));
  if (ctx.identity !== undefined && facts.systemIdentifier !== ctx.identity.systemIdentifier) {
    throw new PgbkError('IDENTITY', `server reports system identifier ${facts.systemIdentifier}, the catalog belongs to ${ctx.identity.systemIdentifier}`, {
      server: server.name,
    });
  }
  refuseBackupWithoutArchiving(server, facts);
  return { conninfo, facts };
}

/** The STARTED record of a basebackup-method backup, owned by this process. */
export function startedBaseBackup(ctx: BackupContext, facts: ServerFacts, slot: string, id: string, beginTime: string): StartedBackup {
  return {
    formatVersion: 1,
    id,
    server: ctx.server.name,
    slot,
    status: 'STARTED',
    method: 'basebackup',
    pgVersion: facts.pgVersion,
    systemIdentifier: facts.systemIdentifier,
    beginTime,
    compression: ctx.server.backup.compression,
    keep: 'none',
    owner: { ...processIdentity(), host: hostname(), startedAt: beginTime },
  };
}

/**
 * pg_basebackup's stderr lines for a backup: -P lines drive the progress display (made at the
 * first one, which carries the server's estimate of the total), warnings and notices are logged.
 */
export function baseBackupLines(ctx: BackupContext, id: string): { readonly onLine: (line: string) => void; readonly finish: () => void } {
  const name = ctx.server.name;
  let progress: Progress | undefined;
  return {
    onLine: (line) => {
      const p = ctx.progress === undefined ? undefined : parseBaseBackupProgress(line);
      if (p !== undefined) {
        progress ??= ctx.progress?.(`${name}: base backup ${id}:`, p.totalBytes);
        progress?.update(p.doneBytes);
      } else if (/\b(WARNING|NOTICE):/.test(line)) ctx.log(`${name}: pg_basebackup: ${line.trim()}`);
    },
    finish: () => progress?.finish(),
  };
}

/** The WAITING_FOR_WAL record once the copy is durable: its LSN range, sizes and checksums. */
export function waitingBaseBackup(
  started: StartedBackup,
  copy: {
    readonly timeline: number;
    readonly beginLsn: string;
    readonly endLsn: string;
    readonly endWal: string;
    readonly segSize: number;
    readonly sizes: { readonly data: number; readonly stored: number };
    readonly checksums: Readonly<Record<string, string>>;
  },
): BackupRecord {
  const { owner: _owner, ...withoutOwner } = started;
  return {
    ...withoutOwner,
    status: 'WAITING_FOR_WAL',
    timeline: copy.timeline,
    beginLsn: copy.beginLsn,
    endLsn: copy.endLsn,
    beginWal: lsnToSegmentName(parseLsn(copy.beginLsn), copy.timeline, copy.segSize),
    endWal: copy.endWal,
    endTime: new Date().toISOString(),
    sizes: { ...copy.sizes },
    checksums: { ...copy.checksums },
  };
}

/**
 * Take one base backup with pg_basebackup (-Ft; the WAL comes from the archive) into
 * backups/<id>/. The record goes STARTED (with this process as owner, so a crash is detected) →
 * WAITING_FOR_WAL (data durable, LSN range known) (DONE is the executor's
 * decision once every segment of the range is archived); any error leaves it FAILED with the reason. Returns the final record.
 *
 * The copy does not wait for the archiver (see pg/basebackup.ts). As soon as it ends this starts
 * waiting, beside the checksum pass and at most backup.archiveTimeout, for the server to archive
 * the end segment, then runs hooks.endSegmentArchived (apply archives incoming/ there, still beside
 * the checksum pass), and returns when both are done (record WAITING_FOR_WAL), so that the executor
 * can usually make the backup DONE in the same run. A timeout is not a failure: the data is complete,
 * and the backup becomes DONE once its WAL is archived.
 */
export async function takeBaseBackup(ctx: BackupContext, slot: string, hooks: TakeHooks = {}): Promise<BackupRecord> {
  const server = ctx.server;
  const { conninfo, facts } = await probeForBaseBackup(ctx);
  mark('probe');
  const id = await allocateBackupId(ctx);
  const dir = backupDir(ctx.catalog, server.name, id);
  const started = startedBaseBackup(ctx, facts, slot, id, new Date().toISOString());
  let record: BackupRecord = started;
  await writeBackupRecord(ctx.catalog, record);
  ctx.log(`${server.name}: base backup ${id} started (slot ${slot})`);
  mark('record STARTED');
  const lines = baseBackupLines(ctx, id);
  // Started as soon as the copy ends, while this process checksums and syncs the files.
  let archiverWait: Promise<void> | undefined;
  const stopWaiting = new AbortController();
  try {
    const result = await runBaseBackup({
      conninfo,
      targetDir: dir,
      compression: server.backup.compression,
      fastCheckpoint: server.backup.fastCheckpoint,
      label: `pgbk ${server.name} ${id}`,
      pgVersion: facts.pgVersion,
      onProgress: lines.onLine,
      // -P costs the server a size estimate first: only when someone watches (a terminal).
      ...(ctx.progress === undefined ? {} : { progress: true }),
      ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    });
    lines.finish();
    mark('pg_basebackup');
    const segSize = facts.walSegmentSize;
    const endWal = endLsnToSegmentName(parseLsn(result.endLsn), result.timeline, segSize);
    archiverWait = endSegmentWork(ctx, conninfo, id, endWal, stopWaiting.signal, hooks);
    archiverWait.catch(() => undefined); // awaited below: never an unhandled rejection meanwhile
    const { checksums, stored } = await checksumAndSyncStoredFiles(dir, result.files);
    mark('checksums, sync');
    record = waitingBaseBackup(started, {
      timeline: result.timeline,
      beginLsn: result.beginLsn,
      endLsn: result.endLsn,
      endWal,
      segSize,
      sizes: { data: result.dataBytes ?? stored, stored },
      checksums,
    });
    await writeBackupRecord(ctx.catalog, record);
    mark('WAITING_FOR_WAL');
  } catch (err) {
    lines.finish();
    const e = toPgbkError(err, { server: server.name });
    // On a full disk even this small write may fail; the reason must still reach the user (the
    // record stays STARTED with this process as owner, and the next apply marks it FAILED).
    await writeBackupRecord(ctx.catalog, failedBackup(record, e.message, new Date().toISOString())).catch((werr: unknown) => {
      ctx.log(`${server.name}: cannot record backup ${id} as FAILED: ${(werr as Error).message}`);
    });
    // The data is given up: how far the archiver got no longer matters.
    stopWaiting.abort();
    await settleAfterFailure(ctx, id, archiverWait);
    throw e;
  }
  await archiverWait;
  mark('archiver wait');
  return record;
}

/**
 * What follows the copy beside the checksum pass: wait for the server to archive the end segment,
 * then the executor's hook (TakeHooks), unless the copy failed in the meantime (`stop`).
 */
export async function endSegmentWork(ctx: BackupContext, conninfo: string, id: string, endWal: string, stop: AbortSignal, hooks: TakeHooks): Promise<void> {
  if (!(await waitForEndSegment(ctx, conninfo, id, endWal, stop)) || stop.aborted) return;
  mark('(beside) end segment archived by the server');
  await hooks.endSegmentArchived?.();
  mark('(beside) end segment hook done');
}

/** See takeBaseBackup: wait for the archiver, report a timeout, never fail the backup for it. Whether it archived. */
export async function waitForEndSegment(ctx: BackupContext, conninfo: string, id: string, endWal: string, stop: AbortSignal): Promise<boolean> {
  const server = ctx.server;
  const signal = ctx.signal === undefined ? stop : AbortSignal.any([ctx.signal, stop]);
  const archived = await waitForArchivedWal(conninfo, endWal, server.backup.archiveTimeoutSeconds * 1000, signal).catch((err: unknown) => {
    if (!signal.aborted) ctx.log(`${server.name}: cannot ask the server whether ${endWal} is archived: ${toPgbkError(err).message}`);
    return false;
  });
  if (!archived && !signal.aborted) {
    ctx.log(
      `${server.name}: ${endWal} not archived by the server within ${server.backup.archiveTimeoutSeconds} s (backup.archiveTimeout); backup ${id} stays WAITING_FOR_WAL until it is`,
    );
  }
  return archived;
}
