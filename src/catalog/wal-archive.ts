/**
 * The WAL archive: wal/<TTTTTTTTLLLLLLLL>/<name>[.zst|.gz] plus a SHA256SUMS per directory.
 * pgBackRest's rules: verify before storing, checksum everything, and never overwrite an archived
 * file: the same name with the same content is a harmless duplicate, with other content it is
 * refused (the caller quarantines the incoming copy and warns).
 */

import type { Dirent } from 'node:fs';
import { mkdir, open, readFile, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import type { ArchivedWal, ServerIdentity } from '../model/types.js';
import { validateSegment, type SegmentVerdict } from '../pg/wal-header.js';
import { classifyIncoming, isBackupHistoryName, isHistoryName, isPartialName, isSegmentName } from '../pg/wal-name.js';
import { fsyncDir, linkNoClobber, writeTemp } from '../lib/atomic.js';
import { COMPRESSIONS, compressBuffer, compressionOfFile, decompressBuffer, extensionFor } from './compress.js';
import { mapLimited } from '../lib/map-limited.js';
import { humanBytes } from '../lib/free-space.js';
import { rethrowNoSpace } from './no-space.js';
import { CHECKSUMS_FILE, walDirFor, walPath, walRoot } from './layout.js';
import { sha256Hex, sha256HexAsync } from '../lib/checksum.js';
import { appendChecksum, readChecksums, removeChecksums } from './wal-checksums.js';
import { validateBackupHistoryFile, validateHistoryFile } from './wal-text-files.js';

export type ArchiveOutcome = { readonly result: 'archived' | 'duplicate'; readonly sha256: string } | { readonly result: 'rejected'; readonly reason: string };

export interface ArchiveOptions {
  readonly catalog: string;
  readonly server: string;
  /** The file to archive (e.g. in incoming/); it is read, never moved or deleted. */
  readonly sourcePath: string;
  /** Its WAL name: a segment, NAME.partial, NAME.<8-hex offset>.backup or TTTTTTTT.history. */
  readonly name: string;
  readonly identity: ServerIdentity;
  /** For segments; .history and .backup files are small text and stored uncompressed. */
  readonly compression: Compression;
}

interface Stored {
  readonly file: string;
  readonly compression: Compression;
}

/** The stored copy of `name` under any compression, or undefined. */
async function findStored(catalog: string, server: string, name: string): Promise<Stored | undefined> {
  for (const compression of COMPRESSIONS) {
    const file = walPath(catalog, server, name, compression);
    try {
      await stat(file);
      return { file, compression };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
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
async function compareWithStored(stored: Stored, incoming: Buffer): Promise<ArchiveOutcome> {
  const dir = path.dirname(stored.file);
  const storedName = path.basename(stored.file);
  let storedBytes: Buffer;
  let existing: Buffer;
  try {
    storedBytes = await readFile(stored.file);
    existing = await decompressBuffer(storedBytes, stored.compression);
  } catch (err) {
    return {
      result: 'rejected',
      reason: `an archived copy with this name exists but is unreadable (${(err as Error).message}); not overwriting ${stored.file}`,
    };
  }
  const storedSha = sha256Hex(storedBytes);
  const recorded = (await readChecksums(dir)).get(storedName);
  if (recorded !== undefined && recorded !== storedSha) {
    return {
      result: 'rejected',
      reason: `the archived copy ${stored.file} no longer matches its recorded checksum (corrupt?) — not overwriting, check the archive`,
    };
  }
  if (existing.equals(incoming)) {
    // Heals a crash between publishing the file and recording its checksum.
    if (recorded === undefined) await appendChecksum(dir, storedName, storedSha);
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

/** Write `stored` durably under `finalPath` unless it exists (temp file + link). */
async function publish(finalPath: string, stored: Buffer): Promise<'created' | 'exists'> {
  const dir = path.dirname(finalPath);
  let tmp: string;
  try {
    tmp = await writeTemp(finalPath, stored, { mode: 0o640 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // First file of this log (or prune just removed the empty directory): create it durably —
    // every new level's entry in its parent, and the log directory's entry even when a concurrent
    // archiver created it (its fsync may still be in flight when we publish into it).
    const created = await mkdir(dir, { recursive: true, mode: 0o750 });
    const top = created ?? dir;
    for (let d = dir; ; d = path.dirname(d)) {
      await fsyncDir(path.dirname(d));
      if (d === top || path.dirname(d) === d) break;
    }
    tmp = await writeTemp(finalPath, stored, { mode: 0o640 });
  }
  return linkNoClobber(tmp, finalPath);
}

/**
 * archiveWalFile for bytes already in memory (wal-receive over SSH): the same checks and outcome.
 * `zstdOfBuf`: a zstd frame (with content checksum) that decompresses to `buf`, compressed by
 * the sender; stored as is instead of compressing again when the archive stores zstd.
 */
export async function archiveWalBuffer(opts: Omit<ArchiveOptions, 'sourcePath'>, buf: Buffer, zstdOfBuf?: Buffer): Promise<ArchiveOutcome> {
  const { catalog, server, name } = opts;
  const verdict = validate(name, buf, opts.identity);
  if (!verdict.ok) return { result: 'rejected', reason: verdict.reason };
  const existing = await findStored(catalog, server, name);
  if (existing !== undefined) return compareWithStored(existing, buf);

  const kind = classifyIncoming(name);
  const compression: Compression = kind === 'segment' || kind === 'partial' ? opts.compression : 'none';
  const finalPath = walPath(catalog, server, name, compression);
  const dir = path.dirname(finalPath);
  const stored = compression === 'zstd' && zstdOfBuf !== undefined ? zstdOfBuf : await compressBuffer(buf, compression);
  // The checksum is of the stored bytes (so `sha256sum -c SHA256SUMS` works in the directory, and
  // hashing costs 1/8 of hashing the segment); the content itself is covered by zstd's frame
  // checksum / gzip's CRC on decompression.
  const sha256 = await sha256HexAsync(stored);
  let published: 'created' | 'exists';
  let writing = finalPath;
  try {
    published = await publish(finalPath, stored);
    writing = path.join(dir, CHECKSUMS_FILE);
    if (published === 'created') await appendChecksum(dir, path.basename(finalPath), sha256);
  } catch (err) {
    // Disk full: say where and how much is left (the temp file is already gone: writeTemp and
    // linkNoClobber remove it on failure). A segment published before its SHA256SUMS line is
    // healed by the retry PostgreSQL makes: it is then a duplicate and the line is added.
    const what = writing === finalPath ? `WAL file ${name}, ${humanBytes(stored.length)} to store` : `the checksum of WAL file ${name}`;
    return rethrowNoSpace(err, { server, file: writing, what });
  }
  if (published === 'exists') return compareWithStored({ file: finalPath, compression }, buf);
  return { result: 'archived', sha256 };
}

/**
 * The uncompressed bytes of an archived file: the stored bytes are verified against SHA256SUMS when
 * recorded, the content by the compression's own checksum (zstd frame checksum, gzip CRC32).
 */
export async function readArchivedWal(catalog: string, server: string, name: string): Promise<Buffer> {
  const stored = await findStored(catalog, server, name);
  if (stored === undefined) {
    throw new PgbkError('NOT_FOUND', `WAL file ${name} is not in the archive`, { server, path: walDirFor(catalog, server, name) });
  }
  const storedBytes = await readFile(stored.file);
  const recorded = (await readChecksums(path.dirname(stored.file))).get(path.basename(stored.file));
  if (recorded !== undefined && recorded !== sha256Hex(storedBytes)) {
    throw new PgbkError('WAL', `archived WAL file ${name} is corrupt: its sha256 does not match SHA256SUMS`, {
      server,
      path: stored.file,
      hint: 'restore this file from another copy; recovery cannot replay past it',
    });
  }
  try {
    return await decompressBuffer(storedBytes, stored.compression);
  } catch (err) {
    throw new PgbkError('WAL', `archived WAL file ${name} is corrupt: ${(err as Error).message}`, {
      server,
      path: stored.file,
      cause: err,
    });
  }
}

function stripExtension(fileName: string): string {
  return fileName.slice(0, fileName.length - extensionFor(compressionOfFile(fileName)).length);
}

interface StoredName {
  readonly dir: string;
  readonly fileName: string;
}

const LIST_CONCURRENCY = 16;

/** A directory's entries; none when it was removed meanwhile (prune drops empty log directories). */
async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    // Never skipped: a log directory we cannot read (another OS user's) would hide its segments.
    throw new PgbkError('CATALOG', `cannot list ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { path: dir, cause: err });
  }
}

function isSortedUnique(xs: readonly string[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i - 1]! >= xs[i]!) return false;
  return true;
}

/**
 * What the archive holds: one readdir per log directory, no stat except the newest segment's
 * (for the RPO warning), so it stays fast with hundreds of thousands of segments. Dot-files
 * (temp files in flight) and SHA256SUMS are not listed; .partial files are listed apart.
 */
export async function listArchivedWal(catalog: string, server: string): Promise<ArchivedWal> {
  const root = walRoot(catalog, server);
  let top: Dirent[];
  try {
    top = await readdir(root, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: [], histories: [], backupFiles: [], partials: [] };
    throw new PgbkError('CATALOG', `cannot list the WAL archive: ${(err as Error).message}`, { server, path: root });
  }
  const histories: string[] = [];
  const logDirs: string[] = [];
  const names: string[] = [];
  for (const entry of top) {
    if (entry.isDirectory() && /^[0-9A-F]{16}$/.test(entry.name)) logDirs.push(entry.name);
    else if (entry.isFile() && isHistoryName(stripExtension(entry.name))) histories.push(stripExtension(entry.name));
  }
  // Log directories are listed a few at a time: with ~800 of them (200k segments) one readdir
  // after another leaves the process idle on thread-pool round trips most of the time.
  logDirs.sort();
  const listings = await mapLimited(logDirs, LIST_CONCURRENCY, (d) => readdirIfExists(path.join(root, d)));
  const segments = new Map<string, StoredName>(); // name → where it is stored
  const backupFiles = new Set<string>();
  const partials = new Set<string>();
  for (let i = 0; i < logDirs.length; i++) {
    const dir = logDirs[i]!;
    const inDir: string[] = [];
    for (const fileName of listings[i]!) {
      if (fileName.startsWith('.') || fileName === CHECKSUMS_FILE) continue;
      const name = stripExtension(fileName);
      if (isSegmentName(name)) {
        if (!segments.has(name)) inDir.push(name);
        segments.set(name, { dir, fileName });
      } else if (isBackupHistoryName(name)) backupFiles.add(name);
      else if (isPartialName(name)) partials.add(name);
    }
    for (const name of inDir.sort()) names.push(name);
  }
  // Fixed-width upper-case hex: text order is (timeline, log, seg) order. Directories were visited
  // in order and each sorted, so this is sorted unless a segment sits in a foreign directory.
  const sorted = isSortedUnique(names) ? names : [...segments.keys()].sort();
  const newest = sorted[sorted.length - 1];
  let newestMtime: string | undefined;
  if (newest !== undefined) {
    const where = segments.get(newest);
    try {
      if (where !== undefined) newestMtime = (await stat(path.join(root, where.dir, where.fileName))).mtime.toISOString();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // pruned meanwhile
    }
  }
  const result: ArchivedWal = {
    segments: sorted,
    histories: [...new Set(histories)].sort(),
    backupFiles: [...backupFiles].sort(),
    partials: [...partials].sort(),
  };
  return newestMtime === undefined ? result : { ...result, newestMtime };
}

/**
 * Remove archived files (every stored compression of each name), drop their SHA256SUMS lines and
 * remove log directories left empty. Returns the number of files removed; missing ones are skipped.
 */
export async function deleteArchivedWal(catalog: string, server: string, names: readonly string[]): Promise<number> {
  const byDir = new Map<string, string[]>();
  for (const name of names) {
    const dir = walDirFor(catalog, server, name); // throws on a name that is not WAL
    const list = byDir.get(dir) ?? [];
    list.push(name);
    byDir.set(dir, list);
  }
  let count = 0;
  for (const [dir, list] of byDir) {
    const removed = new Set<string>();
    for (const name of list) {
      for (const compression of COMPRESSIONS) {
        const fileName = name + extensionFor(compression);
        try {
          await unlink(path.join(dir, fileName));
          removed.add(fileName);
          count++;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
    if (removed.size === 0) continue;
    await fsyncDir(dir);
    await removeChecksums(dir, removed);
    if (dir !== walRoot(catalog, server)) await removeIfEmpty(dir);
  }
  return count;
}

/** Remove a log directory holding nothing but an empty SHA256SUMS; a concurrent archiver wins. */
async function removeIfEmpty(dir: string): Promise<void> {
  const entries = await readdir(dir);
  if (entries.some((e) => e !== CHECKSUMS_FILE)) return;
  if ((await readChecksums(dir)).size > 0) return;
  try {
    await unlink(path.join(dir, CHECKSUMS_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await rmdir(dir);
    await fsyncDir(path.dirname(dir));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
  }
}
