/**
 * The basebackup method into a catalog on object storage: pg_basebackup's tar archive (stdout) is
 * compressed on the way (zstd / gzip CLI, their own processes) and streamed into one multipart
 * upload through Repository.openWrite, so nothing is staged on local disk and memory stays at the
 * driver's bound (a few parts) whatever the cluster's size.
 *
 * Stored under backups/<id>/: base.tar[.zst|.gz] (the data directory and the backup's WAL range,
 * see pg/basebackup-stream.ts) and backup_manifest (taken out of the stream as it passes), each with
 * its sha256 in backup.json: the same names and checks as a local basebackup backup.
 *
 * The lifecycle is the local method's (basebackup.ts): the id is claimed by creating the STARTED
 * record only if absent (no directories to mkdir on object storage), WAITING_FOR_WAL once the
 * archive and manifest are stored, FAILED with the reason otherwise. A failed or cancelled upload is
 * aborted, so nothing of it stays visible or billed; an abort that cannot reach the store is found
 * by the next apply (abortStaleUploads).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { catalogKeys, createBackupRecord, extensionFor, locate, newBackupId, repositoryOf, writeBackupRecord } from '../catalog/index.js';
import type { ObjectWriter } from '../catalog/repository.js';
import type { Compression } from '../config/resolved.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { sha256Hex } from '../lib/checksum.js';
import { type BackupRecord, failedBackup, type StartedBackup } from '../model/types.js';
import { parseBackupManifest } from '../pg/backup-manifest.js';
import { streamBaseBackup, type StreamedBaseBackup } from '../pg/basebackup-stream.js';
import { endLsnToSegmentName, parseLsn } from '../pg/lsn.js';
import { withPgClient } from '../pg/pg-session.js';
import { baseBackupLines, endSegmentWork, probeForBaseBackup, startedBaseBackup, waitingBaseBackup } from './basebackup.js';
import { settleAfterFailure } from './beside-copy.js';
import type { BackupContext, TakeHooks } from './context.js';
import { TarReader } from './ssh/tar-format.js';

const MANIFEST = 'backup_manifest';
/** The manifest lists every file (~150 bytes each): far more than any cluster needs, still bounded. */
const MANIFEST_MAX = 256 * 1024 * 1024;

/** Passes the tar through unchanged, checks it is complete, and keeps backup_manifest's bytes. */
class ManifestTap extends Transform {
  readonly #reader = new TarReader();
  #inManifest = false;
  #parts: Buffer[] = [];
  #manifestBytes = 0;
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      for (const ev of this.#reader.push(chunk)) {
        if (ev.type === 'file') this.#inManifest = ev.name === MANIFEST;
        else if (ev.type === 'fileEnd') this.#inManifest = false;
        else if (this.#inManifest) {
          this.#manifestBytes += ev.data.length;
          if (this.#manifestBytes > MANIFEST_MAX) throw new Error(`${MANIFEST} in the archive is larger than ${MANIFEST_MAX} bytes`);
          this.#parts.push(Buffer.from(ev.data));
        }
      }
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.#reader.finish();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  manifest(): string | undefined {
    return this.#parts.length === 0 ? undefined : Buffer.concat(this.#parts).toString('utf8');
  }
}

/** The compressor for `compression` (its own process, as restore's decompressor), or undefined. */
function compressor(compression: Compression): ChildProcess | undefined {
  switch (compression) {
    case 'zstd':
      // Level 1 on two threads, as the local method's server-zstd (pg/basebackup.ts): on a
      // pgbench cluster's tar, level 3 took 2.2× the CPU of level 1 (0.38 vs 0.17 s per 180 MB)
      // for an archive 2.5 % smaller, and the compressor shares the cores with pg_basebackup.
      return spawn('zstd', ['-q', '-c', '-1', '-T2'], { stdio: ['pipe', 'pipe', 'pipe'] });
    case 'gzip':
      return spawn('gzip', ['-1', '-c', '-n'], { stdio: ['pipe', 'pipe', 'pipe'] });
    case 'none':
      return undefined;
    default: {
      const never: never = compression;
      throw new PgbkError('INTERNAL', `unknown compression ${String(never)}`);
    }
  }
}

function exited(child: ChildProcess, name: string): Promise<void> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new PgbkError('INTERNAL', `cannot run ${name}: ${err.message}`, { cause: err })));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new PgbkError('INTERNAL', `${name} failed (${signal ?? `exit ${String(code)}`}): ${stderr.trim() || '(no output)'}`));
    });
  });
}

/** Tablespaces besides pg_default and pg_global: pg_basebackup -D - cannot write them (one archive). */
async function userTablespaces(conninfo: string): Promise<string[]> {
  return withPgClient(conninfo, async (client) => {
    const r = await client.query<{ spcname: string }>("SELECT spcname FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1");
    return r.rows.map((row) => row.spcname);
  });
}

/**
 * Run every step of the copy; on the first failure stop the others (pg_basebackup and the
 * compressor by their handles). The reason reported is the first failure, except that
 * pg_basebackup's own error wins when it failed by itself: the torn archive downstream is then a
 * consequence, not the cause (and when the upload failed, pg_basebackup's "killed" is the consequence).
 */
async function copyAll(steps: readonly Promise<unknown>[], bb: StreamedBaseBackup, stop: () => void): Promise<void> {
  let firstFailure: unknown;
  const watched = steps.map((p) =>
    p.catch((err: unknown) => {
      if (firstFailure === undefined) {
        firstFailure = err;
        stop();
      }
      throw err;
    }),
  );
  const results = await Promise.allSettled(watched);
  if (results.every((r) => r.status === 'fulfilled')) return;
  const bbErr = await bb.done.then(
    () => undefined,
    (err: unknown) => err,
  );
  throw bbErr !== undefined && !bb.killed() ? bbErr : firstFailure;
}

/** Write the FAILED record, retrying a while: the store may be what failed (and come back). */
async function recordFailure(ctx: BackupContext, record: BackupRecord, reason: string): Promise<void> {
  const failed = failedBackup(record, reason, new Date().toISOString());
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      await writeBackupRecord(ctx.catalog, failed);
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        // The record stays STARTED with this process as owner: the next apply marks it FAILED.
        ctx.log(`${ctx.server.name}: cannot record backup ${record.id} as FAILED: ${(err as Error).message}`);
        return;
      }
      await sleep(Math.min(1000 * attempt, 5000));
    }
  }
}

export async function takeStreamedBaseBackup(ctx: BackupContext, slot: string, hooks: TakeHooks = {}): Promise<BackupRecord> {
  const server = ctx.server;
  const { conninfo, facts } = await probeForBaseBackup(ctx);
  const spaces = await userTablespaces(conninfo);
  if (spaces.length > 0) {
    throw new PgbkError(
      'CONFIG',
      `backup method basebackup into an object-storage catalog cannot copy tablespaces yet (this cluster has ${spaces.join(', ')})`,
      {
        server: server.name,
        hint: 'pg_basebackup writes one archive when it streams (-D -): use backup.method ssh (it stores tablespaces in the bucket too) or a local catalog for clusters with tablespaces',
      },
    );
  }
  const repo = await repositoryOf(ctx.catalog);

  let claimed: StartedBackup | undefined;
  for (let attempt = 0; attempt < 5 && claimed === undefined; attempt++) {
    const begin = new Date();
    const started = startedBaseBackup(ctx, facts, slot, newBackupId(begin), begin.toISOString());
    if ((await createBackupRecord(ctx.catalog, started)) === 'created') claimed = started;
    else await sleep(1000 - (Date.now() % 1000) + 5);
  }
  if (claimed === undefined) throw new PgbkError('CATALOG', 'could not allocate a backup id (a backup.json exists each second)', { server: server.name });
  const id = claimed.id;
  let record: BackupRecord = claimed;
  ctx.log(`${server.name}: base backup ${id} started (slot ${slot}), streamed to ${locate(ctx.catalog, catalogKeys.backup(server.name, id))}`);

  const tarName = `base.tar${extensionFor(server.backup.compression)}`;
  let writer: ObjectWriter | undefined;
  const lines = baseBackupLines(ctx, id);
  let archiverWait: Promise<void> | undefined;
  const stopWaiting = new AbortController();
  try {
    writer = await repo.openWrite(`${catalogKeys.backup(server.name, id)}${tarName}`);
    const bb = streamBaseBackup({
      conninfo,
      fastCheckpoint: server.backup.fastCheckpoint,
      label: `pgbk ${server.name} ${id}`,
      pgVersion: facts.pgVersion,
      ...(ctx.progress === undefined ? {} : { progress: true }),
      ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
      onLine: lines.onLine,
    });
    const tap = new ManifestTap();
    const comp = compressor(server.backup.compression);
    const stream = writer.stream;
    const steps =
      comp === undefined
        ? [bb.done, pipeline(bb.stdout, tap, stream)]
        : [bb.done, pipeline(bb.stdout, tap, comp.stdin!), pipeline(comp.stdout!, stream), exited(comp, server.backup.compression)];
    await copyAll(steps, bb, () => {
      bb.kill();
      if (comp !== undefined && comp.exitCode === null && comp.signalCode === null) comp.kill('SIGTERM');
      if (!stream.destroyed) stream.destroy(new Error('the copy was stopped'));
    });
    lines.finish();
    const manifestText = tap.manifest();
    const manifestKey = `${catalogKeys.backup(server.name, id)}${MANIFEST}`;
    if (manifestText === undefined) throw new PgbkError('PG', `pg_basebackup's archive has no ${MANIFEST}`, { server: server.name });
    const manifest = parseBackupManifest(manifestText, locate(ctx.catalog, manifestKey));
    const segSize = facts.walSegmentSize;
    const timeline = manifest.begin.timeline;
    const endWal = endLsnToSegmentName(parseLsn(manifest.end.endLsn), manifest.end.timeline, segSize);
    archiverWait = endSegmentWork(ctx, conninfo, id, endWal, stopWaiting.signal, hooks);
    archiverWait.catch(() => undefined); // awaited below: never an unhandled rejection meanwhile
    const stored = await writer.commit();
    await repo.put(manifestKey, manifestText);
    const manifestBytes = Buffer.byteLength(manifestText);
    record = waitingBaseBackup(claimed, {
      timeline,
      beginLsn: manifest.begin.startLsn,
      endLsn: manifest.end.endLsn,
      endWal,
      segSize,
      sizes: { data: manifest.dataBytes ?? tap.bytes, stored: stored.size + manifestBytes },
      checksums: { [MANIFEST]: sha256Hex(manifestText), [tarName]: stored.sha256 },
    });
    await writeBackupRecord(ctx.catalog, record);
  } catch (err) {
    lines.finish();
    const e = toPgbkError(err, { server: server.name });
    await writer?.abort().catch((aerr: unknown) => ctx.log(`${server.name}: backup ${id}: ${(aerr as Error).message}`));
    await recordFailure(ctx, record, e.message);
    stopWaiting.abort();
    await settleAfterFailure(ctx, id, archiverWait);
    throw e;
  }
  await archiverWait;
  return record;
}
