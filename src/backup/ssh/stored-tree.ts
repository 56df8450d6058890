/**
 * Reading a stored root of an `ssh` backup ("data" or "tablespaces/<oid>") back as the tree it
 * came from: directories and symlinks as stored, each file as the list of its stored objects
 * (a plain file, or the chunk files of `<path>.pgbk-chunks/`) with the sha256 files.json records
 * for each. Restore, the tar stream of a remote restore and `pgbk verify` all walk it, so a file
 * is rebuilt and checked one way. Every recorded file must be found, and nothing unrecorded may
 * hide in the tree (except backup_label and tablespace_map, written from pg_backup_stop and
 * checksummed in backup.json). In a formatVersion 3 backup every recorded object is a zstd frame,
 * decompressed as it is read (its length and sha256 are those of the uncompressed bytes).
 *
 * On object storage (formatVersion 4) there is no tree to walk: files.json records directories,
 * symlinks and files, every object is a chunk of the server's chunk store named by its hash, and
 * backup_label / tablespace_map are objects of the backup itself. A StoredTree says which.
 */

import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { ChunkStore } from '../../catalog/chunk-store.js';
import { backupDir, catalogKeys } from '../../catalog/layout.js';
import { locate, repositoryKindOf, repositoryOf } from '../../catalog/open.js';
import { directorySource, storedSource, type StoredSource } from '../../catalog/stored-source.js';
import { zstdCodec } from '../../catalog/zstd.js';
import { PgbkError } from '../../errors.js';
import { sha256Hex } from '../../lib/checksum.js';
import { CHUNK_DIR_SUFFIX, chunkLength, chunkLocation, type FileManifest, type ManifestFile } from './incremental.js';
import { plural } from '../../lib/plural.js';

export interface StoredObject {
  /** The local file; on object storage where the object is (for messages). */
  readonly file: string;
  /** formatVersion 4: the chunk store's chunk of this sha256. */
  readonly chunk?: string;
  /** formatVersion 4: this stored file of the backup itself (data/backup_label, data/tablespace_map). */
  readonly named?: string;
  /** Uncompressed length. */
  readonly length: number;
  /** The file is one zstd frame (formatVersion 3). */
  readonly compressed?: boolean;
  /** Recorded sha256 (hex); absent for formatVersion 1 backups and the pg_backup_stop files. */
  readonly sha256?: string;
}

export type StoredEntry =
  | { readonly kind: 'dir'; readonly rel: string; readonly mode: number; readonly mtimeMs: number }
  | { readonly kind: 'symlink'; readonly rel: string; readonly target: string; readonly mtimeMs: number }
  | {
      readonly kind: 'file';
      readonly rel: string;
      readonly size: number;
      readonly mode: number;
      readonly mtimeMs: number;
      readonly objects: readonly StoredObject[];
      readonly uid?: number;
      readonly gid?: number;
    };

/** One stored `ssh` backup: its named files, and its tree in a directory or its chunks in a chunk store. */
export interface StoredTree {
  /** The backup's directory or its location on object storage (messages). */
  readonly where: string;
  /** files.json, data/backup_label, data/tablespace_map, wherever the catalog keeps them. */
  readonly source: StoredSource;
  /** Local catalog: the backup directory (formatVersion 1–3 trees are walked there). */
  readonly dir?: string;
  /** Object storage: the server's chunk store (formatVersion 4). */
  readonly chunks?: ChunkStore;
}

export async function openStoredTree(catalog: string, server: string, id: string): Promise<StoredTree> {
  const source = await storedSource(catalog, server, id);
  if (repositoryKindOf(catalog) === 'posix') {
    const dir = backupDir(catalog, server, id);
    return { where: dir, source, dir };
  }
  return { where: locate(catalog, catalogKeys.backup(server, id)), source, chunks: new ChunkStore(await repositoryOf(catalog), server) };
}

/** A local backup directory as a StoredTree (tests and tools that hold a path). */
export function storedTreeAt(dir: string): StoredTree {
  return { where: dir, source: directorySource(dir), dir };
}

const UNRECORDED_OK: ReadonlySet<string> = new Set(['data/backup_label', 'data/tablespace_map']);

function damaged(server: string, file: string, why: string): PgbkError {
  return new PgbkError('CATALOG', `stored backup damaged: ${file} ${why}`, { server, path: file });
}

function objectsOf(srcDir: string, f: ManifestFile, chunkSize: number, compressed: boolean): StoredObject[] {
  const hashes = f.hashes!;
  return hashes.map((h, i) => ({
    file: path.join(srcDir, chunkLocation(f.path, hashes.length, i)),
    length: chunkLength(f.size, chunkSize, i),
    sha256: h,
    ...(compressed ? { compressed } : {}),
  }));
}

/** Entries of one stored root in depth-first name order; rel is relative to the root ('' never appears). */
export async function* walkStoredRoot(tree: StoredTree, storedAs: string, manifest: FileManifest, server: string): AsyncGenerator<StoredEntry> {
  if (manifest.formatVersion === 4) {
    yield* walkRecordedRoot(tree, storedAs, manifest, server);
    return;
  }
  if (tree.dir === undefined) throw damaged(server, tree.where, `files.json formatVersion ${manifest.formatVersion} is not a chunk store's`);
  const srcDir = tree.dir;
  const prefix = `${storedAs}/`;
  const recorded = new Map<string, ManifestFile>();
  for (const f of manifest.files) if (f.path.startsWith(prefix)) recorded.set(f.path, f);
  const seen = new Set<string>();
  const chunkSize = manifest.chunkSize ?? 0;
  // formatVersion 2 and 3 record every file with its chunk hashes; 3 stores them compressed.
  const v2 = manifest.formatVersion >= 2;
  const compressed = manifest.compression === 'zstd';

  async function* walk(rel: string): AsyncGenerator<StoredEntry> {
    const dir = path.join(srcDir, storedAs, rel);
    // The entries' types come with the listing: a recorded file or chunk directory (nearly all of
    // them) needs no lstat, which was one round trip through libuv's pool per file of the walk.
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const name = entry.name;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(dir, name);
      const known = entry.isDirectory() || entry.isFile() || entry.isSymbolicLink();
      const recordedPlain = known && entry.isFile() && v2 && recorded.has(`${prefix}${childRel}`);
      const chunkDir = known && entry.isDirectory() && v2 && name.endsWith(CHUNK_DIR_SUFFIX);
      // lstat only where its fields are used (or where the listing did not give the type).
      const st = recordedPlain || chunkDir ? undefined : await lstat(full);
      const isDir = st?.isDirectory() ?? entry.isDirectory();
      if (isDir && v2 && name.endsWith(CHUNK_DIR_SUFFIX)) {
        const fileRel = childRel.slice(0, -CHUNK_DIR_SUFFIX.length);
        const f = recorded.get(`${prefix}${fileRel}`);
        if (f === undefined || (f.hashes?.length ?? 0) < 2) throw damaged(server, full, 'is a chunk directory files.json does not record');
        const present = await readdir(full);
        if (present.length !== f.hashes!.length)
          throw damaged(server, full, `holds ${plural(present.length, 'chunk')}, files.json records ${f.hashes!.length}`);
        seen.add(f.path);
        yield { kind: 'file', rel: fileRel, size: f.size, mode: f.mode, mtimeMs: f.mtimeMs, objects: objectsOf(srcDir, f, chunkSize, compressed) };
      } else if (st?.isDirectory() === true) {
        yield { kind: 'dir', rel: childRel, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs };
        yield* walk(childRel);
      } else if (st?.isSymbolicLink() === true) {
        yield { kind: 'symlink', rel: childRel, target: await readlink(full), mtimeMs: st.mtimeMs };
      } else if (st === undefined || st.isFile()) {
        const stored = `${prefix}${childRel}`;
        const f = recorded.get(stored);
        if (f !== undefined && v2) {
          if (f.hashes!.length !== 1) throw damaged(server, full, `is a plain file, files.json records ${f.hashes!.length} chunks`);
          seen.add(stored);
          yield { kind: 'file', rel: childRel, size: f.size, mode: f.mode, mtimeMs: f.mtimeMs, objects: objectsOf(srcDir, f, chunkSize, compressed) };
        } else if (st !== undefined && (f !== undefined || UNRECORDED_OK.has(stored) || !v2)) {
          // formatVersion 1 (or a pg_backup_stop file): as stored, like the `cp -a` of old.
          if (f !== undefined) seen.add(stored);
          yield {
            kind: 'file',
            rel: childRel,
            size: st.size,
            mode: st.mode & 0o7777,
            mtimeMs: st.mtimeMs,
            objects: [{ file: full, length: st.size }],
            uid: st.uid,
            gid: st.gid,
          };
        } else {
          throw damaged(server, full, 'is not recorded in files.json');
        }
      }
    }
  }

  yield* walk('');
  for (const p of recorded.keys()) if (!seen.has(p)) throw damaged(server, path.join(srcDir, p), 'is recorded in files.json but missing');
}

/**
 * formatVersion 4: one root's entries from files.json alone (sorted by path, so a directory comes
 * before what is in it), its files' objects in the chunk store; in "data" also backup_label and
 * tablespace_map, stored with the backup.
 */
async function* walkRecordedRoot(tree: StoredTree, storedAs: string, manifest: FileManifest, server: string): AsyncGenerator<StoredEntry> {
  if (tree.chunks === undefined) throw damaged(server, tree.where, 'is a chunk store backup (files.json formatVersion 4) outside object storage');
  const chunks = tree.chunks;
  const prefix = `${storedAs}/`;
  const rel = (p: string): string => p.slice(prefix.length);
  const entries: StoredEntry[] = [];
  for (const d of manifest.dirs ?? []) if (d.path.startsWith(prefix)) entries.push({ kind: 'dir', rel: rel(d.path), mode: d.mode, mtimeMs: d.mtimeMs });
  for (const l of manifest.symlinks ?? [])
    if (l.path.startsWith(prefix)) entries.push({ kind: 'symlink', rel: rel(l.path), target: l.target, mtimeMs: l.mtimeMs });
  const chunkSize = manifest.chunkSize ?? 0;
  for (const f of manifest.files) {
    if (!f.path.startsWith(prefix)) continue;
    const objects = f.hashes!.map((h, i) => ({ file: chunks.where(h), chunk: h, length: chunkLength(f.size, chunkSize, i), sha256: h, compressed: true }));
    entries.push({ kind: 'file', rel: rel(f.path), size: f.size, mode: f.mode, mtimeMs: f.mtimeMs, objects });
  }
  if (storedAs === 'data') {
    for (const name of ['data/backup_label', 'data/tablespace_map']) {
      let size: number;
      try {
        size = await tree.source.size(name);
      } catch (err) {
        if (name === 'data/backup_label') throw err;
        continue; // no tablespace_map: a cluster without tablespaces
      }
      const mtimeMs = manifest.listedAtMs;
      entries.push({ kind: 'file', rel: rel(name), size, mode: 0o600, mtimeMs, objects: [{ file: tree.source.where(name), named: name, length: size }] });
    }
  }
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  yield* entries;
}

/** The stored bytes of an object (compressed when it is), wherever it is kept. */
export async function readStoredBytes(o: StoredObject, server: string, tree?: StoredTree): Promise<Buffer> {
  if (o.chunk !== undefined) {
    if (tree?.chunks === undefined) throw new Error(`internal: chunk ${o.chunk} read without its chunk store`);
    return tree.chunks.getFrame(o.chunk);
  }
  if (o.named !== undefined) {
    if (tree === undefined) throw new Error(`internal: ${o.named} read without its backup`);
    const parts: Buffer[] = [];
    for await (const c of tree.source.open(o.named)) parts.push(c);
    return Buffer.concat(parts);
  }
  return readFile(o.file).catch((err: NodeJS.ErrnoException) => {
    throw damaged(server, o.file, `cannot be read (${err.code ?? err.message})`);
  });
}

/** A stored object's bytes (uncompressed), checked against its recorded length and sha256. */
export async function readStoredObject(o: StoredObject, server: string, tree?: StoredTree): Promise<Buffer> {
  return checkStoredBytes(o, await readStoredBytes(o, server, tree), server);
}

/** Stored bytes of `o` as read: decompressed when compressed, checked against its recorded length and sha256. */
export async function checkStoredBytes(o: StoredObject, stored: Buffer, server: string): Promise<Buffer> {
  let data: Buffer = stored;
  if (o.compressed === true) {
    const codec = await zstdCodec();
    try {
      data = codec.decompress(stored);
    } catch (err) {
      // zstd's content checksum or a corrupt block: the bytes on disk are not what was written.
      throw damaged(server, o.file, `does not match its recorded sha256 (cannot be decompressed: ${(err as Error).message})`);
    }
  }
  if (data.length !== o.length) throw damaged(server, o.file, `is ${data.length} bytes, ${o.length} expected`);
  if (o.sha256 !== undefined && sha256Hex(data) !== o.sha256) throw damaged(server, o.file, 'does not match its recorded sha256');
  return data;
}
