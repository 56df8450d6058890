/**
 * The WAL archive: wal/<TTTTTTTTLLLLLLLL>/<name>[.zst|.gz], stored through the repository port,
 * which records the sha256 of each stored file (posix: a SHA256SUMS per directory, sha256sum -c
 * works there). pgBackRest's rules: verify before storing, checksum everything, and never
 * overwrite an archived file: the same name with the same content is a harmless duplicate, with
 * other content it is refused (the caller quarantines the incoming copy and warns).
 */

import { open } from 'node:fs/promises'; // the file to archive is local (incoming/, %p), not in the repository
import path from 'node:path';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import type { ArchivedWal, ServerIdentity } from '../model/types.js';
import { validateSegment, type SegmentVerdict } from '../pg/wal-header.js';
import { classifyIncoming, isBackupHistoryName, isHistoryName, isPartialName, isSegmentName } from '../pg/wal-name.js';
import type { FrameParts } from './zstd.js';
import { frameBound } from './zstd-frame.js';
import { bytesLength } from '../lib/atomic.js';
import { COMPRESSIONS, compressParts, decompressBuffer, decompressToFd } from './compress.js';
import { mapLimited } from '../lib/map-limited.js';
import { humanBytes } from '../lib/free-space.js';
import { isNoSpaceError, noSpaceError } from './no-space.js';
import { catalogKeys } from './layout.js';
import { locate, osErrorOf, repositoryKindOf, repositoryOf, type CatalogRef, storeErrorMessage } from './open.js';
import type { Repository } from './repository.js';
import { sha256Hex, sha256HexAsync } from '../lib/checksum.js';
import { validateBackupHistoryFile, validateHistoryFile } from './wal-text-files.js';
import { objectNames, stripExtension } from './archive-listing.js';

export type ArchiveOutcome = { readonly result: 'archived' | 'duplicate'; readonly sha256: string } | { readonly result: 'rejected'; readonly reason: string };

export interface ArchiveOptions {
  readonly catalog: CatalogRef;
  readonly server: string;
  /** The file to archive (e.g. in incoming/); it is read, never moved or deleted. */
  readonly sourcePath: string;
  /** Its WAL name: a segment, NAME.partial, NAME.<8-hex offset>.backup or TTTTTTTT.history. */
  readonly name: string;
  readonly identity: ServerIdentity;
  /** For segments; .history and .backup files are small text and stored uncompressed. */
  readonly compression: Compression;
  /**
   * The caller listed the file's log directory moments ago (ArchiveListing) and no copy of `name`
   * was there: skip looking for one (on an object store, a HEAD per compression kind). Safe when
   * the listing is stale: the put stays put-if-absent, and 'exists' leads to the usual comparison.
   */
  readonly knownAbsent?: boolean;
}

interface Stored {
  readonly key: string;
  readonly compression: Compression;
  /** The sha256 recorded when it was stored (undefined: none recorded, e.g. a crash in between). */
  readonly sha256: string | undefined;
}

/** The stored copy of `name` under any compression, or undefined. */
async function findStored(repo: Repository, server: string, name: string): Promise<Stored | undefined> {
  for (const compression of COMPRESSIONS) {
    const key = catalogKeys.wal(server, name, compression);
    const info = await repo.stat(key);
    if (info !== undefined) return { key, compression, sha256: info.sha256 };
  }
  return undefined;
}

function validate(name: string, buf: Buffer, identity: ServerIdentity): SegmentVerdict {
  const kind = classifyIncoming(name);
  switch (kind) {
    case 'segment':
    case 'partial':
      return validateSegment(name, buf, {
        systemIdentifier: identity.systemIdentifier,
        segSize: identity.walSegmentSize,
      });
    case 'history':
      return validateHistoryFile(name, buf);
    case 'backup':
      return validateBackupHistoryFile(name, buf, identity.walSegmentSize);
    case 'in-flight':
    case 'unknown':
      return { ok: false, reason: `"${name}" is not a WAL archive file name` };
    default: {
      const never: never = kind;
      throw new PgbkError('INTERNAL', `unknown incoming kind ${String(never)}`);
    }
  }
}

/**
 * Decide duplicate vs conflict against an already archived copy by comparing the uncompressed bytes
 * (rare path: only when a name is pushed twice); never touches the copy.
 */
async function compareWithStored(repo: Repository, catalog: CatalogRef, stored: Stored, incoming: Buffer): Promise<ArchiveOutcome> {
  const file = locate(catalog, stored.key);
  let storedBytes: Buffer;
  let existing: Buffer;
  try {
    const got = await repo.get(stored.key);
    if (got === undefined) throw new Error('it was removed meanwhile');
    storedBytes = got;
    existing = await decompressBuffer(storedBytes, stored.compression);
  } catch (err) {
    return {
      result: 'rejected',
      reason: `an archived copy with this name exists but is unreadable (${storeErrorMessage(err)}); not overwriting ${file}`,
    };
  }
  const storedSha = sha256Hex(storedBytes);
  const recorded = stored.sha256;
  if (recorded !== undefined && recorded !== storedSha) {
    return {
      result: 'rejected',
      reason: `the archived copy ${file} no longer matches its recorded checksum (corrupt?) — not overwriting, check the archive`,
    };
  }
  if (existing.equals(incoming)) {
    // Heals a crash between publishing the file and recording its checksum: putIfAbsent of the
    // very same bytes records it (and stores nothing).
    if (recorded === undefined) await repo.putIfAbsent(stored.key, storedBytes, { sha256: storedSha });
    return { result: 'duplicate', sha256: storedSha };
  }
  return { result: 'rejected', reason: 'an archived file with this name and different content exists' };
}

/**
 * Read buffers of one WAL segment's size are reused: a fresh 16 MiB buffer per segment made the
 * garbage collector the third-largest cost when archiving hundreds of segments.
 */
const spareBuffers: Buffer[] = [];
const MAX_SPARE_BUFFERS = 4;

/** The whole file in a (possibly reused) buffer; call release() once nothing uses it any more. */
async function readWhole(file: string): Promise<{ readonly data: Buffer; release(): void }> {
  const fh = await open(file, 'r');
  let buf: Buffer | undefined;
  try {
    const size = (await fh.stat()).size;
    const spare = spareBuffers.findIndex((b) => b.length === size);
    buf = spare >= 0 ? spareBuffers.splice(spare, 1)[0]! : Buffer.allocUnsafeSlow(size);
    // As readFile: the size fstat reported (validation then checks it is a whole segment).
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await fh.read(buf, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const whole = buf;
    const data = filled === size ? whole : whole.subarray(0, filled);
    buf = undefined;
    return {
      data,
      release: () => {
        if (spareBuffers.length < MAX_SPARE_BUFFERS && whole.length >= 1024 * 1024) spareBuffers.push(whole);
      },
    };
  } finally {
    if (buf !== undefined && spareBuffers.length < MAX_SPARE_BUFFERS) spareBuffers.push(buf);
    await fh.close();
  }
}

/** Validate, compress and store one WAL file; resolves only once it is durable. */
export async function archiveWalFile(opts: ArchiveOptions): Promise<ArchiveOutcome> {
  let source: Awaited<ReturnType<typeof readWhole>>;
  try {
    source = await readWhole(opts.sourcePath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'CATALOG';
    throw new PgbkError(code, `cannot read ${opts.sourcePath}: ${(err as Error).message}`, {
      server: opts.server,
      path: opts.sourcePath,
      cause: err,
    });
  }
  try {
    return await archiveWalBuffer(opts, source.data);
  } finally {
    source.release();
  }
}

/**
 * A zstd frame (with content checksum) of a segment, compressed elsewhere (by the sender over SSH,
 * by a compression thread), as pieces to store one after another, and their sha256 when the
 * compressor computed it too (a thread hashes while the worker's own thread does other work).
 */
export interface PrecompressedFrame {
  readonly parts: FrameParts;
  readonly sha256?: string;
}

/**
 * archiveWalFile for bytes already in memory (wal-receive over SSH): the same checks and outcome.
 * `zstdOfBuf`: a zstd frame that decompresses to `buf`; stored as is instead of compressing again
 * when the archive stores zstd.
 */
export async function archiveWalBuffer(
  opts: Omit<ArchiveOptions, 'sourcePath'>,
  buf: Buffer,
  zstdOfBuf?: Buffer | PrecompressedFrame,
): Promise<ArchiveOutcome> {
  const { catalog, server, name } = opts;
  const verdict = validate(name, buf, opts.identity);
  if (!verdict.ok) return { result: 'rejected', reason: verdict.reason };
  const repo = await repositoryOf(catalog);
  const existing = opts.knownAbsent === true ? undefined : await findStored(repo, server, name);
  if (existing !== undefined) return compareWithStored(repo, catalog, existing, buf);

  const kind = classifyIncoming(name);
  const compression: Compression = kind === 'segment' || kind === 'partial' ? opts.compression : 'none';
  const key = catalogKeys.wal(server, name, compression);
  const given = zstdOfBuf === undefined || compression !== 'zstd' ? undefined : Buffer.isBuffer(zstdOfBuf) ? { parts: [zstdOfBuf] } : zstdOfBuf;
  // Pieces, not one buffer: the encoder's output is stored without being copied (zstd.ts).
  const stored: FrameParts = given?.parts ?? (await compressParts(buf, compression));
  // The checksum is of the stored bytes (so `sha256sum -c SHA256SUMS` works in the directory, and
  // hashing costs 1/8 of hashing the segment); the content itself is covered by zstd's frame
  // checksum / gzip's CRC on decompression.
  const sha256 = given?.sha256 ?? (stored.length === 1 ? await sha256HexAsync(stored[0]!) : sha256Hex(stored));
  let published: 'created' | 'exists';
  try {
    published = await repo.putIfAbsent(key, stored, { sha256 });
  } catch (err) {
    // Disk full: say where and how much is left (the driver has removed its temp file). A segment
    // published before its checksum was recorded is healed by the retry PostgreSQL makes: it is
    // then a duplicate and the checksum is recorded.
    const os = osErrorOf(err);
    if (os === undefined || !isNoSpaceError(os)) throw err;
    const finalPath = locate(catalog, key);
    const onSums = os.path !== undefined && path.basename(os.path) === 'SHA256SUMS';
    const what = onSums ? `the checksum of WAL file ${name}` : `WAL file ${name}, ${humanBytes(bytesLength(stored))} to store`;
    throw await noSpaceError(os, { server, file: onSums ? path.join(path.dirname(finalPath), 'SHA256SUMS') : finalPath, what });
  }
  if (published === 'exists') return compareWithStored(repo, catalog, { key, compression, sha256: (await repo.stat(key))?.sha256 }, buf);
  return { result: 'archived', sha256 };
}

/** The stored file of archived `name` as a path on this host; undefined when not archived or not a local catalog. */
export async function archivedWalFile(catalog: string, server: string, name: string): Promise<string | undefined> {
  if (repositoryKindOf(catalog) !== 'posix') return undefined;
  const stored = await findStored(await repositoryOf(catalog), server, name);
  return stored === undefined ? undefined : locate(catalog, stored.key);
}

/**
 * The uncompressed bytes of an archived file: the stored bytes are verified against the sha256
 * recorded with them, the content by the compression's own checksum (zstd frame checksum, gzip CRC32).
 *
 * `into`, for readers of many segments one after another: zstd content is decoded into it when it
 * is large enough, and the result is then a view of it, valid until the caller reuses it (a fresh
 * 16 MiB per segment is paged in as it is written: ~10× the decoding itself on this machine kind).
 */
export async function readArchivedWal(
  catalog: CatalogRef,
  server: string,
  name: string,
  opts: ReuseBuffers & { readonly into?: Buffer } = {},
): Promise<Buffer> {
  // zstd through decompressWhole: the C decoder when installed, and not the compressors' modules.
  return decodeArchivedWal(
    catalog,
    server,
    name,
    async (bytes, compression) =>
      compression === 'zstd' ? (await import('./zstd.js')).decompressWhole(bytes, opts.into) : decompressBuffer(bytes, compression),
    opts,
  );
}

/**
 * For readers of many archived files one after another: the stored (compressed) bytes are read
 * into `storedInto` when they fit (Repository.get's `into`), instead of into fresh memory per file.
 * With zstd the content never points into it; with no compression it may, so the result must not
 * outlive the next read with the same buffer.
 */
export interface ReuseBuffers {
  readonly storedInto?: Buffer;
}

/** A buffer for ReuseBuffers.storedInto that holds any stored segment of `segSize` bytes (zstd's bound). */
export function storedBufferFor(segSize: number): Buffer {
  return Buffer.allocUnsafe(frameBound(segSize));
}

/**
 * An archived file's stored bytes, checked against the sha256 recorded with them, not yet decoded
 * (fetchArchivedWal): a reader of many files reads the next while it decodes this one.
 */
export interface FetchedWal {
  readonly name: string;
  readonly bytes: Buffer;
  readonly compression: Compression;
  /** For messages: where the bytes are stored. */
  readonly path: string;
  readonly server: string;
}

/** The stored bytes of an archived file, checked (decodeWalPieces decodes them); NOT_FOUND or WAL errors as readArchivedWal's. */
export async function fetchArchivedWal(catalog: CatalogRef, server: string, name: string, opts: ReuseBuffers = {}): Promise<FetchedWal> {
  return decodeArchivedWal(catalog, server, name, async (bytes, compression, path) => ({ name, bytes, compression, path, server }), opts);
}

/**
 * The second half: the content of a fetched file in pieces through `out` (reused for each piece;
 * see zstd.ts decompressPieces), so no buffer the size of a segment is filled — for a reader that
 * looks at the content once, in order (the restore's WAL scan). Every piece but the last is a
 * multiple of out.length bytes. The content is vouched for (zstd's content checksum) only once
 * this resolves: it rejects on damage after pieces were handed out. `onPiece` must not throw.
 */
export async function decodeWalPieces(f: FetchedWal, out: Buffer, onPiece: (piece: Buffer, offset: number) => void): Promise<number> {
  return decodeChecked(f.name, f.server, f.path, async () => {
    if (f.compression === 'zstd') return (await import('./zstd.js')).decompressPieces(f.bytes, out, onPiece);
    const whole = await decompressBuffer(f.bytes, f.compression);
    if (whole.length > 0) onPiece(whole, 0);
    return whole.length;
  });
}

/**
 * Like readArchivedWal, but the content is decompressed straight into `fd` (from offset 0) instead
 * of into a Buffer (wal-fetch: one copy less of 16 MiB). Returns the bytes written; on a damaged
 * file some may have been written already, so `fd` should be a temporary file.
 */
export async function writeArchivedWal(catalog: CatalogRef, server: string, name: string, fd: number, opts: ReuseBuffers = {}): Promise<number> {
  return decodeArchivedWal(catalog, server, name, (bytes, compression) => decompressToFd(bytes, compression, fd, 0), opts);
}

async function decodeArchivedWal<T>(
  catalog: CatalogRef,
  server: string,
  name: string,
  decode: (storedBytes: Buffer, compression: Compression, path: string) => Promise<T>,
  opts: ReuseBuffers = {},
): Promise<T> {
  const repo = await repositoryOf(catalog);
  const stored = await findStored(repo, server, name);
  const storedBytes = stored === undefined ? undefined : await repo.get(stored.key, opts.storedInto === undefined ? undefined : { into: opts.storedInto });
  if (stored === undefined || storedBytes === undefined) {
    throw new PgbkError('NOT_FOUND', `WAL file ${name} is not in the archive`, { server, path: locate(catalog, catalogKeys.walDirFor(server, name)) });
  }
  const path = locate(catalog, stored.key);
  if (stored.sha256 !== undefined && stored.sha256 !== sha256Hex(storedBytes)) {
    throw new PgbkError('WAL', `archived WAL file ${name} is corrupt: its sha256 does not match SHA256SUMS`, {
      server,
      path,
      hint: 'restore this file from another copy; recovery cannot replay past it',
    });
  }
  return decodeChecked(name, server, path, () => decode(storedBytes, stored.compression, path));
}

/** A decoder's failure as the archived file's damage (a write's failure stays what it is). */
async function decodeChecked<T>(name: string, server: string, path: string, decode: () => Promise<T>): Promise<T> {
  try {
    return await decode();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).syscall !== undefined) throw err; // writing failed, not the file
    throw new PgbkError('WAL', `archived WAL file ${name} is corrupt: ${(err as Error).message}`, { server, path, cause: err });
  }
}

/** Whether `name` is archived (under any compression). */
export async function isArchived(catalog: CatalogRef, server: string, name: string): Promise<boolean> {
  return (await findStored(await repositoryOf(catalog), server, name)) !== undefined;
}

export interface StoredWal {
  readonly bytes: Buffer;
  readonly compression: Compression;
  readonly recordedSha256: string | undefined;
}

/**
 * The stored copy of `name` as archived (compressed), with the sha256 recorded for it; undefined if
 * absent. wal-serve sends these very bytes, so the far end checks what the archive vouched for.
 */
export async function readStoredWal(catalog: CatalogRef, server: string, name: string): Promise<StoredWal | undefined> {
  const repo = await repositoryOf(catalog);
  const stored = await findStored(repo, server, name);
  const bytes = stored === undefined ? undefined : await repo.get(stored.key);
  return stored === undefined || bytes === undefined ? undefined : { bytes, compression: stored.compression, recordedSha256: stored.sha256 };
}

const LIST_CONCURRENCY = 16;

function isSortedUnique(xs: readonly string[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i - 1]! >= xs[i]!) return false;
  return true;
}

/**
 * What the archive holds: one listing per log directory, no stat except the newest segment's
 * (for the RPO warning), so it stays fast with hundreds of thousands of segments. Objects in
 * flight and the driver's bookkeeping are never listed; .partial files are listed apart.
 */
export async function listArchivedWal(catalog: CatalogRef, server: string): Promise<ArchivedWal> {
  const repo = await repositoryOf(catalog);
  const root = catalogKeys.walRoot(server);
  const histories: string[] = [];
  const logDirs: string[] = [];
  const names: string[] = [];
  for await (const entry of repo.listNames(root)) {
    const base = entry.key.slice(root.length);
    if (entry.kind === 'prefix' && /^[0-9A-F]{16}\/$/.test(base)) logDirs.push(base.slice(0, -1));
    else if (entry.kind === 'object' && isHistoryName(stripExtension(base))) histories.push(stripExtension(base));
  }
  // Log directories are listed a few at a time: with ~800 of them (200k segments) one listing
  // after another leaves the process idle on thread-pool round trips most of the time.
  logDirs.sort();
  const listings = await mapLimited(logDirs, LIST_CONCURRENCY, (d) => objectNames(repo, `${root}${d}/`));
  const segments = new Map<string, string>(); // name → key it is stored under
  const backupFiles = new Set<string>();
  const partials = new Set<string>();
  for (let i = 0; i < logDirs.length; i++) {
    const dir = logDirs[i]!;
    const inDir: string[] = [];
    for (const fileName of listings[i]!) {
      const name = stripExtension(fileName);
      if (isSegmentName(name)) {
        if (!segments.has(name)) inDir.push(name);
        segments.set(name, `${root}${dir}/${fileName}`);
      } else if (isBackupHistoryName(name)) backupFiles.add(name);
      else if (isPartialName(name)) partials.add(name);
    }
    for (const name of inDir.sort()) names.push(name);
  }
  // Fixed-width upper-case hex: text order is (timeline, log, seg) order. Directories were visited
  // in order and each sorted, so this is sorted unless a segment sits in a foreign directory.
  const sorted = isSortedUnique(names) ? names : [...segments.keys()].sort();
  const newest = sorted[sorted.length - 1];
  const where = newest === undefined ? undefined : segments.get(newest);
  // undefined when it was pruned meanwhile
  const newestMtime = where === undefined ? undefined : (await repo.stat(where))?.mtime.toISOString();
  const result: ArchivedWal = {
    segments: sorted,
    histories: [...new Set(histories)].sort(),
    backupFiles: [...backupFiles].sort(),
    partials: [...partials].sort(),
  };
  return newestMtime === undefined ? result : { ...result, newestMtime };
}

/**
 * Remove archived files (every stored compression of each name) with their recorded checksums,
 * and the log directories left empty. Returns the number of files removed; missing ones are skipped.
 */
export async function deleteArchivedWal(catalog: CatalogRef, server: string, names: readonly string[]): Promise<number> {
  const repo = await repositoryOf(catalog);
  const byDir = new Map<string, Set<string>>();
  for (const name of names) {
    const dir = catalogKeys.walDirFor(server, name); // throws on a name that is not WAL
    const set = byDir.get(dir) ?? new Set<string>();
    for (const compression of COMPRESSIONS) set.add(catalogKeys.wal(server, name, compression));
    byDir.set(dir, set);
  }
  let count = 0;
  for (const [dir, candidates] of byDir) {
    // One listing tells which of the candidates exist (and so how many go).
    const present = (await objectNames(repo, dir)).map((n) => dir + n).filter((k) => candidates.has(k));
    if (present.length === 0) continue;
    // wal/ itself stays even when the last history file in it goes; an emptied log directory goes.
    await repo.delete(present, { removeEmptyParents: dir !== catalogKeys.walRoot(server) });
    count += present.length;
  }
  return count;
}
