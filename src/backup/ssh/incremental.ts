/**
 * Incremental by chunk: what a new `ssh` backup takes from the previous one, and files.json.
 *
 * Storage: a file of at most one chunk is stored as a plain file; a longer one as a directory
 * `<path>.pgbk-chunks/` of fixed-size chunk files 00000000, 00000001, … (chunkLocation). files.json
 * (formatVersion 2) records per file its size, mtime, mode and the sha256 of each chunk — a plain
 * file is one chunk, an empty file one empty chunk. Equal hashes mean equal bytes, so a chunk of
 * the new backup whose hash is the previous backup's hash at the same index is hard-linked from
 * there: each backup stays self-contained (deleting an older one only drops link counts).
 *
 * Which files are not even read: a file whose size and mtime are what the previous listing
 * recorded AND whose mtime lies safely before the previous listing (margin). Then nothing wrote it
 * since the previous listing (a write moves mtime forward), so the previous copy — taken after
 * that listing — holds exactly today's bytes. A file written around the previous listing could
 * have been copied torn; its repair lives in WAL before this backup's start, which this backup does
 * not replay, so it is read again (its unchanged chunks are still linked, by hash). Pure.
 *
 * formatVersion 1 manifests (older backups: plain files, no hashes) still parse: their unchanged
 * files are re-chunked locally from the stored copy ("import"), changed ones read in full.
 *
 * formatVersion 3 is formatVersion 2 with every stored object (plain file or chunk) one zstd
 * frame (`"compression": "zstd"`); the hashes stay those of the uncompressed bytes. A backup links
 * only from a previous backup of its own format (a chunk is stored one way within a backup);
 * across formats unchanged files are imported locally as for formatVersion 1.
 *
 * formatVersion 4 is the layout on object storage (catalog/chunk-store.ts), which has neither
 * directories, symlinks nor hard links: every chunk is one zstd frame stored once per server
 * under its sha256, shared between backups by reference; files.json itself records the tree's
 * directories (path, mode, mtime) and symlinks (path, target), and the hashes locate the chunks.
 */

import type { RelationChanges } from '../../pg/wal-blocks.js';

/** One file of a backup, by its path in the backup directory ("data/base/1/1259", "tablespaces/16385/…"). */
export interface FileRecord {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** Permission bits (0o600). */
  readonly mode: number;
}

/** A file as files.json records it. hashes is absent only in formatVersion 1 manifests. */
export interface ManifestFile extends FileRecord {
  readonly hashes?: readonly string[];
}

export type ManifestVersion = 1 | 2 | 3 | 4;

export interface FileManifest {
  readonly formatVersion: ManifestVersion;
  /** Database host clock (ms since the epoch) just before the listing was taken. */
  readonly listedAtMs: number;
  readonly pgdata: string;
  readonly tablespaces: readonly { readonly oid: string; readonly location: string }[];
  /** Chunk size in bytes (formatVersion 2 and 3). */
  readonly chunkSize?: number;
  /** formatVersion 3: every stored object is one zstd frame. */
  readonly compression?: 'zstd';
  /** Numeric owner of the data directory's files on the database host (restore as root gives them back). */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Sorted by path. */
  readonly files: readonly ManifestFile[];
  /** formatVersion 4: the stored roots' directories (their own roots "data", "tablespaces/<oid>" implied). */
  readonly dirs?: readonly ManifestDir[];
  /** formatVersion 4: the stored roots' symlinks. */
  readonly symlinks?: readonly ManifestSymlink[];
}

export interface ManifestDir {
  readonly path: string;
  readonly mode: number;
  readonly mtimeMs: number;
}

export interface ManifestSymlink {
  readonly path: string;
  readonly target: string;
  readonly mtimeMs: number;
}

/** 1 MiB: few enough files for a 1 GiB relation segment (1024), small enough that a 5% update of a table stores ~5% of it. */
export const CHUNK_SIZE = 1024 * 1024;

/** Margin between a reused file's mtime and the previous listing: covers coarse timestamps. */
export const REUSE_MARGIN_MS = 2000;

export const CHUNK_DIR_SUFFIX = '.pgbk-chunks';

/** Where chunk `index` of a file stored as `chunkCount` chunks lives, relative to the backup directory. */
export function chunkLocation(filePath: string, chunkCount: number, index: number): string {
  return chunkCount <= 1 ? filePath : `${filePath}${CHUNK_DIR_SUFFIX}/${index.toString(16).padStart(8, '0')}`;
}

/** Byte length of chunk `index` of a file of `size` bytes. */
export function chunkLength(size: number, chunkSize: number, index: number): number {
  return Math.max(0, Math.min(chunkSize, size - index * chunkSize));
}

/** Number of chunks a file of `size` bytes is stored as (an empty file is one empty chunk). */
export function chunkCountOf(size: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(size / chunkSize));
}

export interface FetchItem {
  readonly file: FileRecord;
  /** The previous backup's chunk hashes for this path (same chunk size): chunks to link when equal. */
  readonly prev?: ManifestFile & { readonly hashes: readonly string[] };
  /** Chunks of prev that the WAL says are unchanged (walUnchangedChunks): not read, linked. */
  readonly unchanged?: ChunkRanges;
}

export interface ReusePlan {
  /** Unchanged, previous chunks known: link every stored chunk, record the previous hashes. */
  readonly reuse: readonly { readonly file: FileRecord; readonly prev: ManifestFile & { readonly hashes: readonly string[] } }[];
  /** Unchanged but stored by an older format or chunk size: re-chunk locally from the previous copy. */
  readonly importLocal: readonly { readonly file: FileRecord; readonly prev: ManifestFile }[];
  /** Read on the database host; chunks equal to prev's are linked, the others copied. */
  readonly fetch: readonly FetchItem[];
}

function withHashes(f: ManifestFile | undefined): (ManifestFile & { readonly hashes: readonly string[] }) | undefined {
  return f?.hashes === undefined ? undefined : (f as ManifestFile & { readonly hashes: readonly string[] });
}

/** formatVersion of a new backup's files.json: 4 in a chunk store, 3 when its objects are zstd frames, else 2. */
export function manifestVersionFor(compressed: boolean, chunkStore = false): 2 | 3 | 4 {
  return chunkStore ? 4 : compressed ? 3 : 2;
}

export function planReuse(
  current: readonly FileRecord[],
  previous: FileManifest | undefined,
  chunkSize = CHUNK_SIZE,
  marginMs = REUSE_MARGIN_MS,
  version: 2 | 3 | 4 = 2,
): ReusePlan {
  if (previous === undefined) return { reuse: [], importLocal: [], fetch: current.map((file) => ({ file })) };
  const sameChunks = previous.formatVersion === version && previous.chunkSize === chunkSize;
  const before = new Map<string, ManifestFile>();
  for (const f of previous.files) before.set(f.path, f);
  const reuse: { file: FileRecord; prev: ManifestFile & { readonly hashes: readonly string[] } }[] = [];
  const importLocal: { file: FileRecord; prev: ManifestFile }[] = [];
  const fetch: FetchItem[] = [];
  for (const file of current) {
    const old = before.get(file.path);
    const unchanged = old !== undefined && old.size === file.size && old.mtimeMs === file.mtimeMs && file.mtimeMs < previous.listedAtMs - marginMs;
    const hashed = sameChunks ? withHashes(old) : undefined;
    if (unchanged && hashed !== undefined) reuse.push({ file, prev: hashed });
    else if (unchanged) importLocal.push({ file, prev: old });
    else fetch.push(hashed === undefined ? { file } : { file, prev: hashed });
  }
  return { reuse, importLocal, fetch };
}

const HEX64 = /^[0-9a-f]{64}$/;

function bad(why: string): Error {
  return new Error(`files.json is not a pgbk file manifest: ${why}`);
}

/** files.json, formatVersion 1 ([path, size, mtimeMs]) or 2/3 ([path, size, mtimeMs, mode, hashes]). */
export function parseManifest(text: string): FileManifest {
  const o = JSON.parse(text) as Record<string, unknown>;
  const version = o['formatVersion'];
  if (version !== 1 && version !== 2 && version !== 3 && version !== 4) throw bad(`formatVersion ${String(version)} is not 1, 2, 3 or 4`);
  if (version >= 3 && o['compression'] !== 'zstd') throw bad(`formatVersion ${version} with compression ${JSON.stringify(o['compression'])}, not "zstd"`);
  if (typeof o['listedAtMs'] !== 'number' || !Array.isArray(o['files']) || typeof o['pgdata'] !== 'string' || !Array.isArray(o['tablespaces'])) {
    throw bad('listedAtMs, pgdata, tablespaces or files missing');
  }
  const chunkSize = o['chunkSize'];
  if (version !== 1 && (typeof chunkSize !== 'number' || !Number.isInteger(chunkSize) || chunkSize <= 0)) throw bad('chunkSize missing');
  const files: ManifestFile[] = [];
  for (const row of o['files'] as unknown[]) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'number' || typeof row[2] !== 'number')
      throw bad(`bad file row ${JSON.stringify(row).slice(0, 80)}`);
    const [p, size, mtimeMs] = row as [string, number, number];
    if (version === 1) {
      files.push({ path: p, size, mtimeMs, mode: 0o600 });
      continue;
    }
    const mode = row[3];
    const hashes = row[4];
    if (typeof mode !== 'number' || !Array.isArray(hashes) || !hashes.every((h) => typeof h === 'string' && HEX64.test(h)))
      throw bad(`bad mode or hashes for ${p}`);
    if (hashes.length !== chunkCountOf(size, chunkSize as number)) throw bad(`${p}: ${hashes.length} chunk hashes for ${size} bytes`);
    files.push({ path: p, size, mtimeMs, mode, hashes: hashes as string[] });
  }
  const owner = o['owner'] as { uid?: unknown; gid?: unknown } | undefined;
  const tree = version === 4 ? parseTree(o) : undefined;
  return {
    formatVersion: version,
    listedAtMs: o['listedAtMs'] as number,
    pgdata: o['pgdata'] as string,
    tablespaces: o['tablespaces'] as FileManifest['tablespaces'],
    ...(version !== 1 ? { chunkSize: chunkSize as number } : {}),
    ...(version >= 3 ? { compression: 'zstd' as const } : {}),
    ...(tree ?? {}),
    ...(owner !== undefined && typeof owner.uid === 'number' && typeof owner.gid === 'number' ? { owner: { uid: owner.uid, gid: owner.gid } } : {}),
    files,
  };
}

/**
 * A stored path of formatVersion 4: inside "data" or "tablespaces/<oid>", no empty, "." or ".."
 * segment. There the paths come from files.json alone (not from a directory listing), and restore
 * writes under the target at them: one that could climb out of it is refused.
 */
export function isSafeStoredPath(p: string): boolean {
  const parts = p.split('/');
  const rootLen = parts[0] === 'data' ? 1 : parts[0] === 'tablespaces' && /^\d+$/.test(parts[1] ?? '') ? 2 : 0;
  if (rootLen === 0 || parts.length <= rootLen) return false;
  return parts.slice(rootLen).every((s) => s !== '' && s !== '.' && s !== '..');
}

/** formatVersion 4's dirs ([path, mode, mtimeMs]) and symlinks ([path, target, mtimeMs]). */
function parseTree(o: Record<string, unknown>): { dirs: ManifestDir[]; symlinks: ManifestSymlink[] } {
  if (!Array.isArray(o['dirs']) || !Array.isArray(o['symlinks'])) throw bad('formatVersion 4 without dirs or symlinks');
  const dirs: ManifestDir[] = [];
  for (const row of o['dirs'] as unknown[]) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'number' || typeof row[2] !== 'number')
      throw bad(`bad directory row ${JSON.stringify(row).slice(0, 80)}`);
    if (!isSafeStoredPath(row[0])) throw bad(`unsafe directory path ${JSON.stringify(row[0]).slice(0, 80)}`);
    dirs.push({ path: row[0], mode: row[1], mtimeMs: row[2] });
  }
  const symlinks: ManifestSymlink[] = [];
  for (const row of o['symlinks'] as unknown[]) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'string' || typeof row[2] !== 'number')
      throw bad(`bad symlink row ${JSON.stringify(row).slice(0, 80)}`);
    if (!isSafeStoredPath(row[0])) throw bad(`unsafe symlink path ${JSON.stringify(row[0]).slice(0, 80)}`);
    symlinks.push({ path: row[0], target: row[1], mtimeMs: row[2] });
  }
  const files = o['files'] as unknown[][];
  for (const f of files) if (!isSafeStoredPath(f[0] as string)) throw bad(`unsafe file path ${JSON.stringify(f[0]).slice(0, 80)}`);
  return { dirs, symlinks };
}

/**
 * files.json text for a manifest whose files all carry hashes: formatVersion 4 when it records
 * the tree (dirs and symlinks: a chunk store), else 3 with compression, else 2.
 */
export function formatManifest(m: Omit<FileManifest, 'formatVersion' | 'chunkSize'> & { readonly chunkSize: number }): string {
  const files = m.files.map((f) => {
    if (f.hashes === undefined) throw new Error(`internal: ${f.path} has no chunk hashes`);
    return [f.path, f.size, f.mtimeMs, f.mode, f.hashes];
  });
  const tree = m.dirs !== undefined || m.symlinks !== undefined;
  if (tree && m.compression !== 'zstd') throw new Error('internal: a chunk store keeps zstd frames only');
  const head = tree ? { formatVersion: 4, compression: 'zstd' } : m.compression === 'zstd' ? { formatVersion: 3, compression: 'zstd' } : { formatVersion: 2 };
  const rows = tree
    ? {
        dirs: (m.dirs ?? []).map((d) => [d.path, d.mode, d.mtimeMs]),
        symlinks: (m.symlinks ?? []).map((l) => [l.path, l.target, l.mtimeMs]),
      }
    : {};
  return `${JSON.stringify({ ...head, listedAtMs: m.listedAtMs, pgdata: m.pgdata, tablespaces: m.tablespaces, chunkSize: m.chunkSize, ...(m.owner === undefined ? {} : { owner: m.owner }), ...rows, files })}\n`;
}

/**
 * Relation main forks (data/base/<db>/<relfilenode>[.<segment>], data/global/…, a tablespace's
 * <version dir>/<db>/…): each page carries the LSN of the WAL record that last changed it, so a
 * chunk whose pages all predate the previous backup's start is that backup's chunk (the agent
 * then skips hashing it). Not the free space map (not WAL-logged), the visibility map (clearing a
 * bit does not move its page's LSN) nor init forks.
 */
export function pageLsnsTrusted(storedPath: string): boolean {
  return relationFileOf(storedPath) !== undefined;
}

/** A stored main-fork path's relation and segment file: spc 1663 is pg_default, 1664 pg_global. */
export function relationFileOf(storedPath: string): { spcOid: number; dbOid: number; relNumber: number; segment: number } | undefined {
  const m =
    /^data\/base\/(\d+)\/(\d+)(?:\.(\d+))?$/.exec(storedPath) ??
    /^data\/global\/()(\d+)(?:\.(\d+))?$/.exec(storedPath) ??
    /^tablespaces\/(\d+)\/[^/]+\/(\d+)\/(\d+)(?:\.(\d+))?$/.exec(storedPath);
  if (m === null) return undefined;
  if (storedPath.startsWith('tablespaces/')) return { spcOid: Number(m[1]), dbOid: Number(m[2]), relNumber: Number(m[3]), segment: Number(m[4] ?? '0') };
  const global = storedPath.startsWith('data/global/');
  return { spcOid: global ? 1664 : 1663, dbOid: global ? 0 : Number(m[1]), relNumber: Number(m[2]), segment: Number(m[3] ?? '0') };
}

/** Chunk index ranges [from, to) of a file. */
export type ChunkRanges = readonly (readonly [number, number])[];

/** How the server lays relation files out: its page size and blocks per segment file (RELSEG_SIZE). */
export interface RelationLayout {
  readonly pageSize: number;
  readonly segmentBlocks: number;
}

/**
 * The chunks of a changed relation main fork that the WAL since the previous backup's start never
 * touched (pg/wal-blocks.ts): whole chunks within both the previous size and the current one, no
 * block of them referenced, all below the relation's limit. They are the previous backup's
 * chunks; the agent does not read them. Pure.
 */
export function walUnchangedChunks(
  file: FileRecord,
  previousSize: number,
  changes: (spcOid: number, dbOid: number, relNumber: number) => RelationChanges,
  layout: RelationLayout,
  chunkSize = CHUNK_SIZE,
): ChunkRanges {
  const rel = relationFileOf(file.path);
  const { pageSize, segmentBlocks } = layout;
  if (rel === undefined || pageSize <= 0 || chunkSize % pageSize !== 0 || segmentBlocks <= 0) return [];
  // A segment file longer than a segment: the layout is not what the server said; skip nothing.
  if (file.size > segmentBlocks * pageSize || previousSize > segmentBlocks * pageSize) return [];
  const perChunk = chunkSize / pageSize;
  const whole = Math.floor(Math.min(file.size, previousSize) / chunkSize);
  if (whole === 0) return [];
  const first = rel.segment * segmentBlocks;
  const c = changes(rel.spcOid, rel.dbOid, rel.relNumber);
  const changed = new Uint8Array(whole);
  if (c.kind === 'blocks') {
    for (let i = 0; i < whole; i++) if (c.blocks.anyIn(first + i * perChunk, first + (i + 1) * perChunk)) changed[i] = 1;
    // Chunks reaching the limit: from there on blocks may have been truncated away and come back.
    if (c.limit !== undefined) for (let i = Math.max(0, Math.floor((c.limit - first) / perChunk)); i < whole; i++) changed[i] = 1;
  }
  const ranges: [number, number][] = [];
  for (let i = 0; i < whole; i++) {
    if (changed[i] === 1) continue;
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] === i) last[1] = i + 1;
    else ranges.push([i, i + 1]);
  }
  return ranges;
}
