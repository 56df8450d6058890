/**
 * The copy of an `ssh` backup (take-ssh-backup.ts runs it between pg_backup_start and
 * pg_backup_stop): list PGDATA and the tablespaces on the database host, plan what the previous
 * backup already holds (incremental.ts), make the tree's directories and symlinks, link or refer
 * to unchanged files, and fetch the changed ones through the agent (or a tar stream), into a
 * local backup directory or the server's chunk store on object storage. Returns what files.json
 * will say; nothing here touches the backup's record.
 */

import { mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { backupDir, readBackups, writeFileAtomic } from '../../catalog/index.js';
import type { ChunkStore } from '../../catalog/chunk-store.js';
import type { Repository } from '../../catalog/repository.js';
import { ChunkStoreWriter } from './chunk-store-writer.js';
import { storedSource } from '../../catalog/stored-source.js';
import { PgbkError } from '../../errors.js';
import { mapLimited } from '../../lib/map-limited.js';
import { mark, PROFILE } from '../../lib/profile.js';
import { parseLsn } from '../../pg/lsn.js';
import { type BackupRecord, isCopied } from '../../model/types.js';
import { zstdCodec } from '../../catalog/zstd.js';
import type { Transport } from '../../transport/transport.js';
import type { BackupContext } from '../context.js';
import { type ChunkSink, ChunkWriter, FileChunker, linkOrCopy } from './chunk-writer.js';
import { fetchWithAgent, type FetchContext, type StartedAgent } from './fetch-agent.js';
import { fetchWithTar } from './fetch-tar.js';
import { readFileList } from './stored-file-list.js';
import {
  CHUNK_DIR_SUFFIX,
  CHUNK_SIZE,
  chunkCountOf,
  chunkLocation,
  formatManifest,
  manifestVersionFor,
  planReuse,
  type FetchItem,
  type FileManifest,
  type FileRecord,
  pageLsnsTrusted,
  walUnchangedChunks,
  type ManifestDir,
  type ManifestFile,
  type ManifestSymlink,
} from './incremental.js';
import { findArgs, parseFindListing, selectForBackup, type ListedEntry } from './listing.js';
import type { Tablespace } from './session.js';
import { WAL_COST_RATIO, type WalChanges, WalChangesReader } from './wal-changes.js';

/** Hard links made at once for unchanged files. */
const LINKS_IN_FLIGHT = 16;

/**
 * zstd level of stored chunks: 1. On pgbench -s 50 it stores 807 MB as 35.5 MB (22.7×) in 1 MiB
 * frames, and compression (3 CPU s of the agent's 9.4) is already its largest item, so a
 * higher level would lengthen every backup. PGBK_SSH_ZSTD_LEVEL overrides it for measurements
 * (bench/ssh-peers.ts).
 */
export const ZSTD_LEVEL = Number(process.env['PGBK_SSH_ZSTD_LEVEL'] ?? '1');

/**
 * Where the backup is stored: a directory of the local catalog (chunks as files, unchanged ones
 * hard-linked), or a backup prefix of an object-storage catalog whose chunks go to the server's
 * content-addressed chunk store (files.json formatVersion 4 records the tree).
 */
export type Destination =
  | { readonly kind: 'dir'; readonly dir: string }
  | { readonly kind: 'store'; readonly repo: Repository; readonly prefix: string; readonly store: ChunkStore; readonly where: string };

/** The backup's own named files (files.json, data/backup_label, data/tablespace_map) at their place. */
export async function writeNamed(dest: Destination, name: string, text: string, mode: number): Promise<void> {
  if (dest.kind === 'dir') await writeFileAtomic(path.join(dest.dir, name), text, { mode });
  else await dest.repo.put(`${dest.prefix}${name}`, text);
}

export interface Root {
  /** Directory in the backup: "data" or "tablespaces/<oid>". */
  readonly storedAs: string;
  readonly remote: string;
  readonly isPgdata: boolean;
}

/**
 * List one root with `find`; with `withClock`, the database host's clock read just before, in the
 * same remote command (one round trip less than a separate `date`): `date` prints a line, then
 * find's NUL-separated records follow.
 */
async function listRoot(t: Transport, root: Root, server: string, withClock: true): Promise<{ entries: ListedEntry[]; nowMs: number }>;
async function listRoot(t: Transport, root: Root, server: string, withClock: false): Promise<{ entries: ListedEntry[] }>;
async function listRoot(t: Transport, root: Root, server: string, withClock: boolean): Promise<{ entries: ListedEntry[]; nowMs?: number }> {
  const find = findArgs(root.remote);
  const r = await t.run(withClock ? ['sh', '-c', 'date +%s%N && exec "$@"', 'sh', ...find] : find);
  let listing = r.stdout;
  let nowMs: number | undefined;
  if (withClock) {
    const nl = listing.indexOf(10);
    const ns = Number(listing.subarray(0, Math.max(0, nl)).toString('utf8').trim());
    if (nl < 0 || !Number.isFinite(ns) || ns <= 0)
      throw new PgbkError('NETWORK', `cannot read the clock of ${t.description}: ${r.stderr.trim() || 'connection lost'}`, { server });
    nowMs = Math.floor(ns / 1e6);
    listing = listing.subarray(nl + 1);
  }
  // exit 1 with only "No such file" complaints: files vanished while find walked (DROP TABLE …).
  const complaints = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/No such file or directory/.test(l));
  if (r.code !== 0 && !(r.code === 1 && complaints.length === 0)) {
    throw new PgbkError(r.code === null ? 'NETWORK' : 'CONFIG', `cannot list ${root.remote} on ${t.description}: ${r.stderr.trim() || 'connection lost'}`, {
      server,
    });
  }
  const entries = selectForBackup(parseFindListing(listing), root.isPgdata);
  return nowMs === undefined ? { entries } : { entries, nowMs };
}

export type PreviousBackup = { id: string; record: BackupRecord; manifest: FileManifest } | undefined;

/**
 * Newest DONE `ssh` backup of the same cluster with a readable files.json: the reuse source. Read
 * while pg_backup_start and the listing run (it depends on neither).
 */
export async function previousBackup(ctx: BackupContext, systemIdentifier: string): Promise<PreviousBackup> {
  const done = (await readBackups(ctx.catalog, ctx.server.name)).filter(
    (b) => b.status === 'DONE' && b.method === 'ssh' && b.systemIdentifier === systemIdentifier,
  );
  for (const b of done.reverse()) {
    try {
      // Through the stored-backup port (catalog/stored-source.ts), wherever the catalog keeps it.
      const manifest = await readFileList(await storedSource(ctx.catalog, ctx.server.name, b.id));
      return { id: b.id, record: b, manifest };
    } catch {
      // unreadable manifest: look further back (or copy everything)
    }
  }
  return undefined;
}

export interface CopyOutcome {
  readonly copiedBytes: number;
  /** Bytes the new objects take on disk (compressed). */
  readonly storedBytes: number;
  /** Chunks the agent did not hash: their pages all predate the previous backup's start. */
  readonly lsnSkipped: number;
  /** Chunks not even read: the WAL since the previous backup's start does not touch them. */
  readonly walSkipped: number;
  /** Why the WAL was not used to leave chunks unread (an incremental with changed relation files), else undefined. */
  readonly walNotUsed: string | undefined;
  readonly reusedBytes: number;
  readonly transferredBytes: number;
  readonly fileCount: number;
  readonly reusedFrom: string | undefined;
  readonly manifestText: string;
  /** Stored roots (absolute): their directories are fsynced at the end. */
  readonly roots: readonly string[];
  /** Objects this backup wrote (each already flushed to disk by the ChunkWriter). */
  readonly written: number;
}

/** Previous stored objects of a file, in order (plain file, or its chunk files). */
function storedObjects(prevDir: string, f: ManifestFile, prevChunkSize: number | undefined): string[] {
  const n = f.hashes?.length ?? (prevChunkSize === undefined ? 1 : chunkCountOf(f.size, prevChunkSize));
  return Array.from({ length: n }, (_, i) => path.join(prevDir, chunkLocation(f.path, n, i)));
}

/** Where this backup stands on the server: for the page-LSN shortcut against the previous backup. */
export interface StartPoint {
  readonly timeline: number | undefined;
  readonly startLsn: string;
  readonly pageSize: number | undefined;
  /** Blocks per relation segment file (RELSEG_SIZE). */
  readonly segmentBlocks: number | undefined;
}

/** The previous backup's start, when its pages' LSNs can be compared with this one's (same timeline, earlier). */
function previousStartFor(prev: BackupRecord | undefined, here: StartPoint): { lsn: string; pageSize: number } | undefined {
  if (prev === undefined || !isCopied(prev) || here.timeline !== prev.timeline || here.pageSize === undefined) return undefined;
  try {
    if (parseLsn(prev.beginLsn) > parseLsn(here.startLsn)) return undefined;
  } catch {
    return undefined;
  }
  return { lsn: prev.beginLsn, pageSize: here.pageSize };
}

/**
 * Start summarizing the WAL since the previous backup's start (wal-changes.ts), before this
 * backup's start is known; undefined when there is no previous backup to compare with.
 */
export function startWalChanges(ctx: BackupContext, prev: PreviousBackup, segSize: number): WalChangesReader | undefined {
  if (prev === undefined || !isCopied(prev.record)) return undefined;
  const relationBytes = prev.manifest.files.reduce((n, f) => n + (pageLsnsTrusted(f.path) ? f.size : 0), 0);
  return WalChangesReader.start({
    catalog: ctx.catalog,
    server: ctx.server.name,
    timeline: prev.record.timeline,
    segSize,
    fromLsn: prev.record.beginLsn,
    budgetBytes: relationBytes / WAL_COST_RATIO,
  });
}

/** What copyTree needs to finish the WAL summary started early (startWalChanges). */
export interface WalSource {
  readonly early: Promise<WalChangesReader | undefined>;
  readonly pgVersion: number;
  waitArchived(name: string, ms: number): Promise<boolean>;
}

/** A stored object of an older backup, uncompressed. */
async function readPrevObject(file: string, compressed: boolean): Promise<Buffer> {
  const data = await readFile(file);
  return compressed ? (await zstdCodec()).decompress(data) : data;
}

export async function copyTree(
  ctx: BackupContext,
  t: Transport,
  dest: Destination,
  previousRead: Promise<PreviousBackup>,
  tablespaces: readonly Tablespace[],
  here: StartPoint,
  agent: StartedAgent,
  wal: WalSource,
): Promise<CopyOutcome> {
  const server = ctx.server;
  const pgdata = server.pgdata!;
  const roots: Root[] = [
    { storedAs: 'data', remote: pgdata, isPgdata: true },
    ...tablespaces.map((ts) => ({ storedAs: `tablespaces/${ts.oid}`, remote: ts.location, isPgdata: false })),
  ];
  const listings = new Map<Root, ListedEntry[]>();
  // The clock is read just before the first listing starts: files changed after it are newer.
  const first = await listRoot(t, roots[0]!, server.name, true);
  const listedAtMs = first.nowMs;
  listings.set(roots[0]!, first.entries);
  for (const root of roots.slice(1)) listings.set(root, (await listRoot(t, root, server.name, false)).entries);
  mark('clock and listing (find)');
  const files: FileRecord[] = [];
  const remoteOf = new Map<string, string>();
  let owner: { uid: number; gid: number } | undefined;
  for (const [root, entries] of listings) {
    for (const e of entries) {
      if (e.type !== 'file') continue;
      const stored = `${root.storedAs}/${e.rel}`;
      files.push({ path: stored, size: e.size, mtimeMs: e.mtimeMs, mode: e.mode & 0o7777 });
      remoteOf.set(stored, path.posix.join(root.remote, e.rel));
      if (root.isPgdata && e.rel === 'PG_VERSION') owner = { uid: e.uid, gid: e.gid };
    }
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunkStore = dest.kind === 'store';
  let prev = await previousRead;
  // A chunk store refers only to chunks of its own layout: an older backup's files are not there.
  if (chunkStore && prev !== undefined && prev.manifest.formatVersion !== 4) prev = undefined;
  // A chunk store keeps zstd frames only (whatever backup.compression says: stored once, shared).
  const zstdLevel = server.backup.compression === 'none' && !chunkStore ? undefined : ZSTD_LEVEL;
  const plan = planReuse(files, prev?.manifest, CHUNK_SIZE, undefined, manifestVersionFor(zstdLevel !== undefined, chunkStore));
  const prevDir = prev === undefined || dest.kind !== 'dir' ? undefined : backupDir(ctx.catalog, server.name, prev.id);
  mark(`previous manifest and plan (${plan.reuse.length} reused, ${plan.fetch.length} to fetch)`);

  // The tree itself: directories and symlinks made in the backup directory, or recorded in files.json.
  const treeDirs: ManifestDir[] = [];
  const treeLinks: ManifestSymlink[] = [];
  for (const root of roots) {
    const base = dest.kind === 'dir' ? path.join(dest.dir, root.storedAs) : undefined;
    if (base !== undefined) await mkdir(base, { recursive: true, mode: 0o700 });
    for (const e of listings.get(root) ?? []) {
      const stored = `${root.storedAs}/${e.rel}`;
      const isDir = e.type === 'dir' || (root.isPgdata && e.rel === 'pg_wal' && e.type === 'symlink');
      if (base === undefined) {
        if (isDir) treeDirs.push({ path: stored, mode: e.mode & 0o777 || 0o700, mtimeMs: e.mtimeMs });
        else if (e.type === 'symlink' && e.target !== undefined) treeLinks.push({ path: stored, target: e.target, mtimeMs: e.mtimeMs });
        continue;
      }
      const at = path.join(base, e.rel);
      if (isDir) await mkdir(at, { recursive: true, mode: e.mode & 0o777 || 0o700 });
      else if (e.type === 'symlink' && e.target !== undefined) await symlink(e.target, at);
    }
  }
  let writer: ChunkSink;
  if (dest.kind === 'dir') {
    const w = new ChunkWriter(dest.dir, prevDir, CHUNK_SIZE, zstdLevel);
    await w.init();
    writer = w;
  } else {
    const w = new ChunkStoreWriter(dest.store, CHUNK_SIZE, ZSTD_LEVEL, prev?.manifest.files.flatMap((f) => f.hashes ?? []) ?? []);
    await w.init();
    writer = w;
  }
  mark('directories, symlinks, codec');
  let lsnSkipped = 0;
  let walSkipped = 0;
  let walNotUsed: string | undefined;
  const stored: ManifestFile[] = [];
  let transferredBytes = 0;
  // On a terminal: data bytes stored so far (copied + reused) of the listed total, 4 times a second.
  const progress = ctx.progress?.(
    `${server.name}: ssh backup:`,
    files.reduce((n, f) => n + f.size, 0),
  );
  const ticker =
    progress === undefined ? undefined : setInterval(() => progress.update(writer.totals.copiedBytes + writer.totals.reusedBytes, stored.length), 300);
  ticker?.unref();
  try {
    // Unchanged files: every stored object is a hard link to the previous backup's (many links
    // at once: each is a round trip to the file system, and a large cluster has thousands).
    const links: { from: string; to: string }[] = [];
    for (const { file, prev: old } of plan.reuse) {
      if (dest.kind === 'store') {
        // Referenced by hash: the chunks are the previous backup's, in the same store.
        writer.totals.reusedBytes += old.size;
        stored.push({ ...file, size: old.size, hashes: old.hashes });
        continue;
      }
      const dir = dest.dir;
      const objects = storedObjects(prevDir!, old, CHUNK_SIZE);
      if (objects.length > 1) await mkdir(path.join(dir, `${file.path}${CHUNK_DIR_SUFFIX}`), { mode: 0o700 });
      objects.forEach((from, i) => links.push({ from, to: path.join(dir, chunkLocation(file.path, objects.length, i)) }));
      writer.totals.reusedBytes += old.size;
      stored.push({ ...file, size: old.size, hashes: old.hashes });
    }
    // Unchanged, but stored by an older format: re-chunked from the previous copy, on this host.
    for (const { file, prev: old } of plan.importLocal) {
      if (prevDir === undefined) throw new Error(`internal: ${file.path} to re-chunk without a previous backup directory`);
      writer.begin({ file });
      const chunker = new FileChunker(writer, undefined, CHUNK_SIZE);
      const compressed = prev?.manifest.compression === 'zstd';
      for (const obj of storedObjects(prevDir!, old, prev?.manifest.chunkSize)) await chunker.feed(await readPrevObject(obj, compressed));
      await chunker.close();
      stored.push(await writer.end());
    }
    // The links are made while the agent reads the changed files (neither waits for the other);
    // both are settled before anything below looks at the tree, or a failure removes it.
    const linking = mapLimited(links, LINKS_IN_FLIGHT, (l) => linkOrCopy(l.from, l.to));
    linking.catch(() => undefined);
    try {
      await fetchChanged();
    } finally {
      await linking.catch(() => undefined);
    }
    await linking;
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    progress?.update(writer.totals.copiedBytes + writer.totals.reusedBytes, stored.length); // a short copy still shows once
    progress?.finish();
    await writer.flush().catch(() => undefined); // nothing still writing when a failure removes the tree
  }

  /** The fetch list with the chunks the WAL says are unchanged (none when it cannot say). */
  async function withWalChanges(fetch: readonly FetchItem[]): Promise<readonly FetchItem[]> {
    const reader = await wal.early.catch((err: unknown) => {
      walNotUsed = `the WAL since the previous backup could not be read: ${(err as Error).message}`;
      return undefined;
    });
    const candidates = fetch.filter((item) => item.prev !== undefined && pageLsnsTrusted(item.file.path));
    if (reader === undefined) return fetch;
    if (candidates.length === 0) {
      reader.abandon();
      return fetch;
    }
    if (here.pageSize === undefined || here.segmentBlocks === undefined) {
      reader.abandon();
      walNotUsed = 'the server did not say its page or relation segment size';
      return fetch;
    }
    const changes = await reader
      .finish({
        toLsn: here.startLsn,
        timeline: here.timeline,
        pgVersion: wal.pgVersion,
        transport: t,
        pgdata,
        changedBytes: candidates.reduce((n, item) => n + item.file.size, 0),
        waitArchived: (name, ms) => wal.waitArchived(name, ms),
      })
      .catch((err: unknown): WalChanges => ({ skipped: (err as Error).message }));
    if ('skipped' in changes) {
      walNotUsed = changes.skipped;
      return fetch;
    }
    const layout = { pageSize: here.pageSize, segmentBlocks: here.segmentBlocks };
    const of = changes.summary.changes.bind(changes.summary);
    mark(`WAL since the previous backup (${changes.segments} segments, ${changes.summary.records} records)`);
    // walUnchangedChunks leaves other files alone (no ranges).
    return fetch.map((item) => (item.prev === undefined ? item : { ...item, unchanged: walUnchangedChunks(item.file, item.prev.size, of, layout) }));
  }

  async function fetchChanged(): Promise<void> {
    const previousStart = previousStartFor(prev?.record, here);
    const items = await withWalChanges(plan.fetch);
    const fetchCtx: FetchContext = {
      transport: t,
      server: server.name,
      chunkSize: CHUNK_SIZE,
      writer,
      ...(server.backup.parallel === undefined ? {} : { workers: server.backup.parallel }),
      ...(previousStart === undefined ? {} : { previousStart }),
      ...(PROFILE ? { profile: true } : {}),
      remotePathOf: (item) => remoteOf.get(item.file.path)!,
    };
    if (plan.fetch.length === 0) await agent.abandon();
    else {
      const viaAgent = await fetchWithAgent(fetchCtx, agent, items);
      if (viaAgent.kind === 'done') {
        stored.push(...viaAgent.files);
        transferredBytes = viaAgent.transferredBytes;
        lsnSkipped = viaAgent.lsnSkipped;
        walSkipped = viaAgent.walSkipped;
      } else {
        ctx.log(
          `${server.name}: the backup agent is not available on ${t.description} (${viaAgent.reason}); falling back to a tar stream (changed files are sent whole; set servers.${server.name}.ssh.pgbk to pgbk's command there)`,
        );
        const viaTar = await fetchWithTar(fetchCtx, plan.fetch);
        stored.push(...viaTar.files);
        transferredBytes = viaTar.transferredBytes;
      }
    }
    await writer.flush();
    if (PROFILE) for (const l of agent.stderr().split('\n')) if (l.startsWith('[profile]')) process.stderr.write(`${l}\n`);
    mark(`fetch through the agent (${plan.fetch.length} files, ${writer.written.length} objects written, ${plan.reuse.length} files linked meanwhile)`);
  }
  stored.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifestText = formatManifest({
    listedAtMs,
    pgdata,
    tablespaces: tablespaces.map((ts) => ({ oid: ts.oid, location: ts.location })),
    chunkSize: CHUNK_SIZE,
    ...(zstdLevel === undefined ? {} : { compression: 'zstd' as const }),
    ...(owner === undefined ? {} : { owner }),
    ...(chunkStore ? { dirs: treeDirs, symlinks: treeLinks } : {}),
    files: stored,
  });
  return {
    copiedBytes: writer.totals.copiedBytes,
    storedBytes: writer.totals.storedBytes,
    lsnSkipped,
    walSkipped,
    walNotUsed,
    reusedBytes: writer.totals.reusedBytes,
    transferredBytes,
    fileCount: stored.length,
    reusedFrom: writer.totals.reusedBytes > 0 ? prev?.id : undefined,
    manifestText,
    roots: dest.kind === 'dir' ? roots.map((r) => path.join(dest.dir, r.storedAs)) : [],
    written: writer.written.length,
  };
}
