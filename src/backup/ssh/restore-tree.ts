/**
 * Restoring an `ssh` backup: after the recorded checksums of files.json and backup_label are
 * checked, each stored root (data/, tablespaces/<oid>/) is rebuilt — files reassembled from their
 * chunks, every chunk checked against the sha256 files.json records as it is read; modes and
 * mtimes as recorded (what `cp -a` of a plain tree kept); as root, owners as on the database host.
 * Used by src/restore/restore.ts (local) and src/restore-remote (a tar stream for `tar -x` there).
 */

import { chmod, lchown, mkdir, open, readFile, readdir, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { PgbkError, toPgbkError } from '../../errors.js';
import { sha256OfFile } from '../../lib/checksum.js';
import type { CopiedBackup } from '../../model/types.js';
import { parseManifest, type FileManifest } from './incremental.js';
import { readStoredObject, walkStoredRoot } from './stored-tree.js';
import { padding, tarEnd, tarHeader } from './tar-format.js';

const MANIFEST_FILE = 'files.json';

export interface SshBackupLayout {
  readonly tablespaceOids: readonly string[];
  readonly bytes: number;
  readonly files: number;
}

/** files.json of a stored backup (its checksum is checked by checkSshBackup). */
export async function readStoredManifest(srcDir: string): Promise<FileManifest> {
  return parseManifest(await readFile(path.join(srcDir, MANIFEST_FILE), 'utf8'));
}

/** Refuse a damaged `ssh` backup before anything is written (chunks are checked as they are read). */
export async function checkSshBackup(srcDir: string, backup: CopiedBackup): Promise<SshBackupLayout> {
  const server = backup.server;
  for (const name of [MANIFEST_FILE, 'data/backup_label']) {
    const want = backup.checksums[name];
    const file = path.join(srcDir, name);
    const got = await sha256OfFile(file).catch(() => 'unreadable');
    if (want === undefined || got !== want) {
      throw new PgbkError('CATALOG', `backup ${backup.id}: ${name} is missing or does not match its recorded sha256`, { server, path: file });
    }
  }
  const manifest = await readStoredManifest(srcDir);
  const stored = await readdir(path.join(srcDir, 'tablespaces')).catch(() => [] as string[]);
  const oids = manifest.tablespaces.map((t) => t.oid).sort();
  for (const oid of oids) {
    if (!stored.includes(oid))
      throw new PgbkError('CATALOG', `backup ${backup.id}: tablespace ${oid} is missing`, { server, path: path.join(srcDir, 'tablespaces') });
  }
  return { tablespaceOids: oids, bytes: manifest.files.reduce((a, f) => a + f.size, 0), files: manifest.files.length };
}

/**
 * Rebuild stored root `storedAs` ("data" or "tablespaces/<oid>") of the backup in srcDir into
 * dest (exists, empty). Throws a CATALOG PgbkError naming the first damaged chunk.
 */
export async function copyTreeInto(srcDir: string, storedAs: string, dest: string, server: string): Promise<void> {
  const manifest = await readStoredManifest(srcDir);
  const asRoot = process.getuid?.() === 0;
  const dirs: { file: string; mtimeMs: number }[] = [];
  try {
    for await (const e of walkStoredRoot(srcDir, storedAs, manifest, server)) {
      const target = path.join(dest, e.rel);
      // One owner for the whole tree, as on the database host (formatVersion 1: as stored).
      const uid = manifest.owner?.uid ?? (e.kind === 'file' ? e.uid : undefined);
      const gid = manifest.owner?.gid ?? (e.kind === 'file' ? e.gid : undefined);
      if (e.kind === 'dir') {
        await mkdir(target, { mode: e.mode });
        await chmod(target, e.mode);
        dirs.push({ file: target, mtimeMs: e.mtimeMs });
      } else if (e.kind === 'symlink') {
        await symlink(e.target, target);
      } else {
        const fh = await open(target, 'wx', 0o600);
        try {
          for (const o of e.objects) await fh.write(await readStoredObject(o, server));
          await fh.chmod(e.mode);
        } finally {
          await fh.close();
        }
        await utimes(target, e.mtimeMs / 1000, e.mtimeMs / 1000);
      }
      if (asRoot && uid !== undefined && gid !== undefined) await lchown(target, uid, gid);
    }
    // Directory times last: creating their entries moved them.
    for (const d of dirs.reverse()) await utimes(d.file, d.mtimeMs / 1000, d.mtimeMs / 1000);
  } catch (err) {
    throw toPgbkError(err, { server, path: dest });
  }
}

/**
 * A tar stream of one stored root of an `ssh` backup ("data" or "tablespaces/<oid>"), paths
 * relative to that root, ready for `tar -x` on the target host; files reassembled from their
 * chunks, each checked against its recorded sha256 as it is read. `done` settles once the stream
 * has ended: it rejects when the stored tree could not be read completely or a chunk is damaged
 * (the stream then ends early, without the end-of-archive blocks, so `tar -x` fails too).
 */
export function sshBackupTarStream(srcDir: string, storedAs: string, server: string): { readonly stream: NodeJS.ReadableStream; readonly done: Promise<void> } {
  const out = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  const push = async (b: Buffer): Promise<void> => {
    if (!out.write(b)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  const done = (async (): Promise<void> => {
    try {
      const manifest = await readStoredManifest(srcDir);
      const uid = manifest.owner?.uid ?? 0;
      const gid = manifest.owner?.gid ?? 0;
      await push(tarHeader({ name: '.', type: 'dir', size: 0, mode: 0o700, mtimeMs: Date.now(), uid, gid }));
      for await (const e of walkStoredRoot(srcDir, storedAs, manifest, server)) {
        const name = `./${e.rel}`;
        if (e.kind === 'dir') await push(tarHeader({ name, type: 'dir', size: 0, mode: e.mode, mtimeMs: e.mtimeMs, uid, gid }));
        else if (e.kind === 'symlink')
          await push(tarHeader({ name, type: 'symlink', size: 0, mode: 0o777, mtimeMs: e.mtimeMs, uid, gid, linkTarget: e.target }));
        else {
          const size = e.objects.reduce((a, o) => a + o.length, 0);
          await push(
            tarHeader({
              name,
              type: 'file',
              size,
              mode: e.mode,
              mtimeMs: e.mtimeMs,
              uid: manifest.owner?.uid ?? e.uid ?? uid,
              gid: manifest.owner?.gid ?? e.gid ?? gid,
            }),
          );
          for (const o of e.objects) await push(await readStoredObject(o, server));
          const pad = padding(size);
          if (pad > 0) await push(Buffer.alloc(pad));
        }
      }
      await push(tarEnd());
      out.end();
    } catch (err) {
      out.end();
      throw toPgbkError(err, { server, path: path.join(srcDir, storedAs) });
    }
  })();
  return { stream: out, done };
}
