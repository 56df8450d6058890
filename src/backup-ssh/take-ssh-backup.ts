/**
 * Backup method `ssh`: a file-level copy of PGDATA (and tablespaces) from the database host over
 * one SSH connection, between pg_backup_start() and pg_backup_stop() in one session, into
 * backups/<id>/data/ (a plain directory tree) and backups/<id>/tablespaces/<oid>/. backup_label
 * and tablespace_map are written from pg_backup_stop's result; files.json records the listing so
 * the next backup can hard-link every file that did not change (incremental by file, each backup
 * self-contained: deleting an older one only drops a link count).
 *
 * Record lifecycle as for pg_basebackup: STARTED (owner = this process) → WAITING_FOR_WAL → DONE
 * via finishIfComplete. Any failure: the session is closed (PostgreSQL abandons the backup), the
 * copied files are removed, the record says FAILED with the reason — nothing half-visible.
 */

import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  backupDir,
  readBackup,
  readBackups,
  recordIdentity,
  writeBackupRecord,
  writeFileAtomic,
} from '../catalog/index.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { endLsnToSegmentName, lsnToSegmentName, parseLsn } from '../pg/lsn.js';
import type { BackupRecord } from '../plan/types.js';
import { connectServer } from '../transport/connect.js';
import type { Transport } from '../transport/transport.js';
import { archiveAllIncoming } from '../apply/archive-wal.js';
import { allocateBackupId } from '../apply/base-backup.js';
import type { ExecContext } from '../apply/context.js';
import { finishIfComplete } from '../apply/finish-backup.js';
import { copyFiles } from './copy.js';
import { parseManifest, planReuse, type FileManifest, type FileRecord } from './incremental.js';
import { findArgs, parseFindListing, selectForBackup, type ListedEntry } from './listing.js';
import { PgClientSession } from './pg-client-session.js';
import { PsqlSession } from './psql-session.js';
import { backupStart, backupStop, labelStartLsn, labelTimeline, listTablespaces, readFacts, type BackupSession, type Tablespace } from './session.js';

export const MANIFEST_FILE = 'files.json';

interface Root {
  /** Directory in the backup: "data" or "tablespaces/<oid>". */
  readonly storedAs: string;
  readonly remote: string;
  readonly isPgdata: boolean;
}

async function remoteNowMs(t: Transport): Promise<number> {
  const r = await t.run(['date', '+%s%N']);
  const ns = Number(r.stdout.toString('utf8').trim());
  if (r.code !== 0 || !Number.isFinite(ns)) throw new PgbkError('NETWORK', `cannot read the clock of ${t.description}: ${r.stderr.trim()}`);
  return Math.floor(ns / 1e6);
}

async function listRoot(t: Transport, root: Root, server: string): Promise<ListedEntry[]> {
  const r = await t.run(findArgs(root.remote));
  // exit 1 with only "No such file" complaints: files vanished while find walked (DROP TABLE …).
  const complaints = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/No such file or directory/.test(l));
  if (r.code !== 0 && !(r.code === 1 && complaints.length === 0)) {
    throw new PgbkError(r.code === null ? 'NETWORK' : 'CONFIG', `cannot list ${root.remote} on ${t.description}: ${r.stderr.trim() || 'connection lost'}`, { server });
  }
  return selectForBackup(parseFindListing(r.stdout), root.isPgdata);
}

/** Newest DONE `ssh` backup of the same cluster with a readable files.json: the reuse source. */
async function previousBackup(ctx: ExecContext, systemIdentifier: string): Promise<{ id: string; manifest: FileManifest } | undefined> {
  const done = (await readBackups(ctx.catalog, ctx.server.name)).filter(
    (b) => b.status === 'DONE' && b.method === 'ssh' && b.systemIdentifier === systemIdentifier,
  );
  for (const b of done.reverse()) {
    try {
      const text = await readFile(path.join(backupDir(ctx.catalog, ctx.server.name, b.id), MANIFEST_FILE), 'utf8');
      return { id: b.id, manifest: parseManifest(text) };
    } catch {
      // unreadable manifest: look further back (or copy everything)
    }
  }
  return undefined;
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EMLINK' && code !== 'EPERM') throw err;
    await copyFile(from, to);
  }
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function openSession(ctx: ExecContext, transport: Transport): Promise<BackupSession> | BackupSession {
  const server = ctx.server;
  if (server.connection !== undefined) return PgClientSession.open(server.connection);
  return new PsqlSession(transport, server.ssh?.psqlConnection, server.name);
}

interface CopyOutcome {
  readonly copiedBytes: number;
  readonly reusedBytes: number;
  readonly fileCount: number;
  readonly reusedFrom: string | undefined;
  readonly manifest: FileManifest;
}

async function copyTree(ctx: ExecContext, t: Transport, dir: string, systemIdentifier: string, tablespaces: readonly Tablespace[]): Promise<CopyOutcome> {
  const server = ctx.server;
  const pgdata = server.pgdata!;
  const roots: Root[] = [
    { storedAs: 'data', remote: pgdata, isPgdata: true },
    ...tablespaces.map((ts) => ({ storedAs: `tablespaces/${ts.oid}`, remote: ts.location, isPgdata: false })),
  ];
  const listedAtMs = await remoteNowMs(t);
  const listings = new Map<Root, ListedEntry[]>();
  for (const root of roots) listings.set(root, await listRoot(t, root, server.name));
  const files: FileRecord[] = [];
  for (const [root, entries] of listings) {
    for (const e of entries) if (e.type === 'file') files.push({ path: `${root.storedAs}/${e.rel}`, size: e.size, mtimeMs: e.mtimeMs });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const prev = await previousBackup(ctx, systemIdentifier);
  const plan = planReuse(files, prev?.manifest);

  for (const root of roots) {
    const base = path.join(dir, root.storedAs);
    await mkdir(base, { recursive: true, mode: 0o700 });
    for (const e of listings.get(root) ?? []) {
      const dest = path.join(base, e.rel);
      if (e.type === 'dir' || (root.isPgdata && e.rel === 'pg_wal' && e.type === 'symlink')) await mkdir(dest, { recursive: true, mode: e.mode & 0o777 || 0o700 });
      else if (e.type === 'symlink' && e.target !== undefined) await symlink(e.target, dest);
    }
  }
  if (prev !== undefined) {
    const prevDir = backupDir(ctx.catalog, server.name, prev.id);
    for (const f of plan.reuse) await linkOrCopy(path.join(prevDir, f.path), path.join(dir, f.path));
  }
  for (const root of roots) {
    const prefix = `${root.storedAs}/`;
    const rels = plan.copy.filter((f) => f.path.startsWith(prefix)).map((f) => f.path.slice(prefix.length));
    await copyFiles(t, root.remote, rels, path.join(dir, root.storedAs), server.name);
  }
  const sum = (list: readonly FileRecord[]): number => list.reduce((a, f) => a + f.size, 0);
  return {
    copiedBytes: sum(plan.copy),
    reusedBytes: sum(plan.reuse),
    fileCount: files.length,
    reusedFrom: plan.reuse.length > 0 ? prev?.id : undefined,
    manifest: {
      formatVersion: 1,
      listedAtMs,
      pgdata,
      tablespaces: tablespaces.map((ts) => ({ oid: ts.oid, location: ts.location })),
      files: files.map((f) => [f.path, f.size, f.mtimeMs] as const),
    },
  };
}

/** Take one `ssh` backup; returns the final record (DONE when its WAL is archived already). */
export async function takeSshBackup(ctx: ExecContext, slot: string): Promise<BackupRecord> {
  const server = ctx.server;
  if (server.pgdata === undefined) {
    throw new PgbkError('CONFIG', 'backup method ssh needs pgdata (the data directory on the database host)', { server: server.name });
  }
  const transport = await connectServer(server);
  let session: BackupSession | undefined;
  let record: BackupRecord | undefined;
  let dir: string | undefined;
  try {
    session = await openSession(ctx, transport);
    const facts = await readFacts(session);
    if (facts.dataDirectory !== undefined && path.resolve(facts.dataDirectory) !== path.resolve(server.pgdata)) {
      throw new PgbkError('CONFIG', `pgdata is ${server.pgdata}, but the server's data_directory is ${facts.dataDirectory}`, { server: server.name });
    }
    ctx.identity = await recordIdentity(ctx.catalog, server.name, {
      systemIdentifier: facts.systemIdentifier,
      pgVersion: facts.pgVersion,
      walSegmentSize: facts.walSegmentSize,
      firstContact: new Date().toISOString(),
    });
    const id = await allocateBackupId(ctx);
    dir = backupDir(ctx.catalog, server.name, id);
    const beginTime = new Date().toISOString();
    record = {
      formatVersion: 1,
      id,
      server: server.name,
      slot,
      status: 'STARTED',
      method: 'ssh',
      pgVersion: facts.pgVersion,
      systemIdentifier: facts.systemIdentifier,
      beginTime,
      compression: 'none',
      keep: 'none',
      owner: { pid: process.pid, host: hostname(), startedAt: beginTime },
    };
    await writeBackupRecord(ctx.catalog, record);
    ctx.log(`${server.name}: ssh backup ${id} started over ${transport.description} (slot ${slot})`);

    await backupStart(session, facts.pgVersion, `pgbk ${server.name} ${id}`, server.backup.fastCheckpoint);
    const tablespaces = await listTablespaces(session);
    const copied = await copyTree(ctx, transport, dir, facts.systemIdentifier, tablespaces);
    const stop = await backupStop(session, facts.pgVersion);
    await writeFileAtomic(path.join(dir, 'data', 'backup_label'), stop.labelFile, { mode: 0o600 });
    if (stop.spcmapFile !== '') await writeFileAtomic(path.join(dir, 'data', 'tablespace_map'), stop.spcmapFile, { mode: 0o600 });
    const manifestText = `${JSON.stringify(copied.manifest)}\n`;
    await writeFileAtomic(path.join(dir, MANIFEST_FILE), manifestText, { mode: 0o640 });
    // Every copied file durable before the record says the data is complete.
    const synced = spawnSync('sync', ['-f', dir]);
    if (synced.status !== 0) throw new PgbkError('CATALOG', `sync -f ${dir} failed: ${synced.stderr.toString().trim()}`, { server: server.name });

    const timeline = labelTimeline(stop.labelFile);
    const beginLsn = labelStartLsn(stop.labelFile);
    const segSize = facts.walSegmentSize;
    const { owner: _owner, ...rest } = record;
    record = {
      ...rest,
      status: 'WAITING_FOR_WAL',
      timeline,
      beginLsn,
      endLsn: stop.lsn,
      beginWal: lsnToSegmentName(parseLsn(beginLsn), timeline, segSize),
      endWal: endLsnToSegmentName(parseLsn(stop.lsn), timeline, segSize),
      endTime: new Date().toISOString(),
      sizes: { data: copied.copiedBytes + copied.reusedBytes, stored: copied.copiedBytes },
      copiedBytes: copied.copiedBytes,
      reusedBytes: copied.reusedBytes,
      fileCount: copied.fileCount,
      ...(copied.reusedFrom === undefined ? {} : { reusedFrom: copied.reusedFrom }),
      checksums: { [MANIFEST_FILE]: sha256(manifestText), 'data/backup_label': sha256(stop.labelFile) },
    };
    await writeBackupRecord(ctx.catalog, record);
    ctx.log(`${server.name}: ssh backup ${id}: ${copied.fileCount} files, ${copied.copiedBytes} bytes copied, ${copied.reusedBytes} reused${copied.reusedFrom ? ` from ${copied.reusedFrom}` : ''}`);
  } catch (err) {
    const e = toPgbkError(err, { server: server.name });
    await session?.close().catch(() => undefined); // ends the session: PostgreSQL abandons the backup
    session = undefined;
    if (record !== undefined && dir !== undefined) {
      // Nothing half-visible: the partial tree goes, the record stays as FAILED with the reason.
      await rm(path.join(dir, 'data'), { recursive: true, force: true }).catch(() => undefined);
      await rm(path.join(dir, 'tablespaces'), { recursive: true, force: true }).catch(() => undefined);
      await rm(path.join(dir, MANIFEST_FILE), { force: true }).catch(() => undefined);
      const { owner: _owner, ...rest } = record;
      await writeBackupRecord(ctx.catalog, { ...rest, status: 'FAILED', endTime: new Date().toISOString(), error: e.message });
    }
    throw e;
  } finally {
    await session?.close().catch(() => undefined);
    await transport.close();
  }
  await archiveAllIncoming(ctx);
  await finishIfComplete(ctx, record.id);
  return readBackup(ctx.catalog, server.name, record.id);
}
