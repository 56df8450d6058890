/**
 * Reading a stored root of an `ssh` backup ("data" or "tablespaces/<oid>") back as the tree it
 * came from: directories and symlinks as stored, each file as the list of its stored objects
 * (a plain file, or the chunk files of `<path>.pgbk-chunks/`) with the sha256 files.json records
 * for each. Restore, the tar stream of a remote restore and `pgbk verify` all walk it, so a file
 * is rebuilt and checked one way. Every recorded file must be found, and nothing unrecorded may
 * hide in the tree (except backup_label and tablespace_map, written from pg_backup_stop and
 * checksummed in backup.json). In a formatVersion 3 backup every recorded object is a zstd frame,
 * decompressed as it is read (its length and sha256 are those of the uncompressed bytes).
 */

import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { zstdCodec } from '../../catalog/zstd.js';
import { PgbkError } from '../../errors.js';
import { sha256Hex } from '../../lib/checksum.js';
import { CHUNK_DIR_SUFFIX, chunkLength, chunkLocation, type FileManifest, type ManifestFile } from './incremental.js';
import { plural } from '../../lib/plural.js';

export interface StoredObject {
  readonly file: string;
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
export async function* walkStoredRoot(srcDir: string, storedAs: string, manifest: FileManifest, server: string): AsyncGenerator<StoredEntry> {
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
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(dir, name);
      const st = await lstat(full);
      if (st.isDirectory() && v2 && name.endsWith(CHUNK_DIR_SUFFIX)) {
        const fileRel = childRel.slice(0, -CHUNK_DIR_SUFFIX.length);
        const f = recorded.get(`${prefix}${fileRel}`);
        if (f === undefined || (f.hashes?.length ?? 0) < 2) throw damaged(server, full, 'is a chunk directory files.json does not record');
        const present = await readdir(full);
        if (present.length !== f.hashes!.length)
          throw damaged(server, full, `holds ${plural(present.length, 'chunk')}, files.json records ${f.hashes!.length}`);
        seen.add(f.path);
        yield { kind: 'file', rel: fileRel, size: f.size, mode: f.mode, mtimeMs: f.mtimeMs, objects: objectsOf(srcDir, f, chunkSize, compressed) };
      } else if (st.isDirectory()) {
        yield { kind: 'dir', rel: childRel, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs };
        yield* walk(childRel);
      } else if (st.isSymbolicLink()) {
        yield { kind: 'symlink', rel: childRel, target: await readlink(full), mtimeMs: st.mtimeMs };
      } else if (st.isFile()) {
        const stored = `${prefix}${childRel}`;
        const f = recorded.get(stored);
        if (f !== undefined && v2) {
          if (f.hashes!.length !== 1) throw damaged(server, full, `is a plain file, files.json records ${f.hashes!.length} chunks`);
          seen.add(stored);
          yield { kind: 'file', rel: childRel, size: f.size, mode: f.mode, mtimeMs: f.mtimeMs, objects: objectsOf(srcDir, f, chunkSize, compressed) };
        } else if (f !== undefined || UNRECORDED_OK.has(stored) || !v2) {
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

/** A stored object's bytes (uncompressed), checked against its recorded length and sha256. */
export async function readStoredObject(o: StoredObject, server: string): Promise<Buffer> {
  const stored = await readFile(o.file).catch((err: NodeJS.ErrnoException) => {
    throw damaged(server, o.file, `cannot be read (${err.code ?? err.message})`);
  });
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
