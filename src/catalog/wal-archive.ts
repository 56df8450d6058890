/**
 * The WAL archive: wal/<TTTTTTTTLLLLLLLL>/<name>[.zst|.gz] plus a SHA256SUMS per directory.
 * pgBackRest's rules: verify before storing, checksum everything, and never overwrite an archived
 * file: the same name with the same content is a harmless duplicate, with other content it is
 * refused (the caller quarantines the incoming copy and warns).
 */

import type { Dirent } from 'node:fs';
import { mkdir, readFile, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import type { ArchivedWal, ServerIdentity } from '../plan/types.js';
import { validateSegment, type SegmentVerdict } from '../pg/wal-header.js';
import { classifyIncoming, isBackupHistoryName, isHistoryName, isSegmentName } from '../pg/wal-name.js';
import { fsyncDir, linkNoClobber, writeTemp } from './atomic.js';
import { COMPRESSIONS, compressBuffer, compressionOfFile, decompressBuffer, extensionFor } from './compress.js';
import { CHECKSUMS_FILE, walDirFor, walPath, walRoot } from './layout.js';
import { appendChecksum, readChecksums, removeChecksums, sha256Hex } from './wal-checksums.js';
import { validateBackupHistoryFile, validateHistoryFile } from './wal-text-files.js';

export type ArchiveOutcome =
  | { readonly result: 'archived' | 'duplicate'; readonly sha256: string }
  | { readonly result: 'rejected'; readonly reason: string };

export interface ArchiveOptions {
  readonly catalog: string;
  readonly server: string;
  /** The file to archive (e.g. in incoming/); it is read, never moved or deleted. */
  readonly sourcePath: string;
  /** Its WAL name: a segment, NAME.partial, NAME.XXXXXXXX.backup or TTTTTTTT.history. */
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

/** Decide duplicate vs conflict against an already archived copy; never touches the copy. */
async function compareWithStored(stored: Stored, sha256: string): Promise<ArchiveOutcome> {
  const dir = path.dirname(stored.file);
  const storedName = path.basename(stored.file);
  let existingSha: string;
  try {
    existingSha = sha256Hex(decompressBuffer(await readFile(stored.file), stored.compression));
  } catch (err) {
    return {
      result: 'rejected',
      reason: `an archived copy with this name exists but is unreadable (${(err as Error).message}); not overwriting ${stored.file}`,
    };
  }
  const recorded = (await readChecksums(dir)).get(storedName);
  if (existingSha === sha256) {
    // Heals a crash between publishing the file and recording its checksum.
    if (recorded === undefined) await appendChecksum(dir, storedName, sha256);
    return { result: 'duplicate', sha256 };
  }
  if (recorded === sha256) {
    return {
      result: 'rejected',
      reason: `the archived copy ${stored.file} no longer matches its recorded checksum (corrupt?); the incoming copy does — not overwriting, check the archive`,
    };
  }
  return { result: 'rejected', reason: 'an archived file with this name and different content exists' };
}

/** Validate, compress and store one WAL file; resolves only once it is durable. */
export async function archiveWalFile(opts: ArchiveOptions): Promise<ArchiveOutcome> {
  const { catalog, server, name } = opts;
  let buf: Buffer;
  try {
    buf = await readFile(opts.sourcePath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'CATALOG';
    throw new PgbkError(code, `cannot read ${opts.sourcePath}: ${(err as Error).message}`, {
      server,
      path: opts.sourcePath,
    });
  }
  const verdict = validate(name, buf, opts.identity);
  if (!verdict.ok) return { result: 'rejected', reason: verdict.reason };
  const sha256 = sha256Hex(buf);

  const existing = await findStored(catalog, server, name);
  if (existing !== undefined) return compareWithStored(existing, sha256);

  const kind = classifyIncoming(name);
  const compression: Compression = kind === 'segment' || kind === 'partial' ? opts.compression : 'none';
  const finalPath = walPath(catalog, server, name, compression);
  const dir = path.dirname(finalPath);
  const stored = compressBuffer(buf, compression);
  let tmp: string;
  try {
    tmp = await writeTemp(finalPath, stored, { mode: 0o640 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // First file of this log (or prune just removed the empty directory): create it durably.
    const created = await mkdir(dir, { recursive: true, mode: 0o750 });
    if (created !== undefined) await fsyncDir(path.dirname(created));
    tmp = await writeTemp(finalPath, stored, { mode: 0o640 });
  }
  if ((await linkNoClobber(tmp, finalPath)) === 'exists') {
    return compareWithStored({ file: finalPath, compression }, sha256);
  }
  await appendChecksum(dir, path.basename(finalPath), sha256);
  return { result: 'archived', sha256 };
}

/** The uncompressed bytes of an archived file, verified against SHA256SUMS when recorded. */
export async function readArchivedWal(catalog: string, server: string, name: string): Promise<Buffer> {
  const stored = await findStored(catalog, server, name);
  if (stored === undefined) {
    throw new PgbkError('NOT_FOUND', `WAL file ${name} is not in the archive`, { server, path: walDirFor(catalog, server, name) });
  }
  let buf: Buffer;
  try {
    buf = decompressBuffer(await readFile(stored.file), stored.compression);
  } catch (err) {
    throw new PgbkError('WAL', `archived WAL file ${name} is corrupt: ${(err as Error).message}`, {
      server,
      path: stored.file,
      cause: err,
    });
  }
  const recorded = (await readChecksums(path.dirname(stored.file))).get(path.basename(stored.file));
  if (recorded !== undefined && recorded !== sha256Hex(buf)) {
    throw new PgbkError('WAL', `archived WAL file ${name} is corrupt: its sha256 does not match SHA256SUMS`, {
      server,
      path: stored.file,
      hint: 'restore this file from another copy; recovery cannot replay past it',
    });
  }
  return buf;
}

function stripExtension(fileName: string): string {
  return fileName.slice(0, fileName.length - extensionFor(compressionOfFile(fileName)).length);
}

/**
 * What the archive holds: one readdir per log directory, no stat except the newest segment's
 * (for the RPO warning), so it stays fast with hundreds of thousands of segments. Dot-files
 * (temp files in flight), SHA256SUMS and .partial files are not listed.
 */
export async function listArchivedWal(catalog: string, server: string): Promise<ArchivedWal> {
  const root = walRoot(catalog, server);
  let top: Dirent[];
  try {
    top = await readdir(root, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: [], histories: [], backupFiles: [] };
    throw new PgbkError('CATALOG', `cannot list the WAL archive: ${(err as Error).message}`, { server, path: root });
  }
  const histories: string[] = [];
  const logDirs: string[] = [];
  for (const entry of top) {
    if (entry.isDirectory() && /^[0-9A-F]{16}$/.test(entry.name)) logDirs.push(entry.name);
    else if (entry.isFile() && isHistoryName(stripExtension(entry.name))) histories.push(stripExtension(entry.name));
  }
  const segments = new Map<string, string>(); // name → stored file name
  const backupFiles = new Set<string>();
  for (const d of logDirs) {
    for (const fileName of await readdir(path.join(root, d))) {
      if (fileName.startsWith('.') || fileName === CHECKSUMS_FILE) continue;
      const name = stripExtension(fileName);
      if (isSegmentName(name)) segments.set(name, path.join(d, fileName));
      else if (isBackupHistoryName(name)) backupFiles.add(name);
    }
  }
  // Fixed-width upper-case hex: text order is (timeline, log, seg) order.
  const names = [...segments.keys()].sort();
  const newest = names[names.length - 1];
  let newestMtime: string | undefined;
  if (newest !== undefined) {
    const rel = segments.get(newest);
    try {
      if (rel !== undefined) newestMtime = (await stat(path.join(root, rel))).mtime.toISOString();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // pruned meanwhile
    }
  }
  const result: ArchivedWal = {
    segments: names,
    histories: [...new Set(histories)].sort(),
    backupFiles: [...backupFiles].sort(),
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
