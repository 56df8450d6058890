/**
 * Restoring an `ssh` backup: after the recorded checksums of files.json and backup_label are
 * checked, each stored root (data/, tablespaces/<oid>/) is rebuilt — files reassembled from their
 * chunks, every chunk checked against the sha256 files.json records as it is read; modes and
 * mtimes as recorded (what `cp -a` of a plain tree kept); as root, owners as on the database host.
 * Used by src/restore/restore.ts (local) and src/restore-remote (a tar stream for `tar -x` there).
 */

import { close, fchmod, fdatasync, open as openFd } from 'node:fs';
import { chmod, lchown, mkdir, readdir, symlink, utimes } from 'node:fs/promises';
import { fsyncDir } from '../../lib/atomic.js';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { PgbkError, toPgbkError } from '../../errors.js';
import { sha256Hasher } from '../../lib/checksum.js';
import { mapLimited } from '../../lib/map-limited.js';
import type { CopiedBackup } from '../../model/types.js';
import type { FileManifest } from './incremental.js';
import type { RestoreJob, RestoreResult } from './restore-worker.js';
import { FILE_LIST, readFileList } from './stored-file-list.js';
import { readStoredBytes, readStoredObject, walkStoredRoot, type StoredObject, type StoredTree } from './stored-tree.js';
import { padding, tarEnd, tarHeader } from './tar-format.js';

const openAsync = promisify(openFd);
const closeAsync = promisify(close);
const fchmodAsync = promisify(fchmod);
const fdatasyncAsync = promisify(fdatasync);

export interface SshBackupLayout {
  readonly tablespaceOids: readonly string[];
  readonly bytes: number;
  readonly files: number;
  /** files.json as checked, for a restore that follows (not read and parsed a second time). */
  readonly manifest: FileManifest;
}

/** files.json of a stored backup (its checksum is checked by checkSshBackup). */
export async function readStoredManifest(tree: StoredTree): Promise<FileManifest> {
  return readFileList(tree.source);
}

/** sha256 of one of the backup's named files as stored; undefined when it cannot be read. */
export async function sha256OfStored(tree: StoredTree, name: string): Promise<string | undefined> {
  try {
    const h = sha256Hasher();
    for await (const c of tree.source.open(name)) h.update(c);
    return h.hex();
  } catch {
    return undefined;
  }
}

/** Refuse a damaged `ssh` backup before anything is written (chunks are checked as they are read). */
export async function checkSshBackup(tree: StoredTree, backup: CopiedBackup): Promise<SshBackupLayout> {
  const server = backup.server;
  for (const name of [FILE_LIST, 'data/backup_label']) {
    const want = backup.checksums[name];
    const got = await sha256OfStored(tree, name);
    if (want === undefined || got !== want) {
      throw new PgbkError('CATALOG', `backup ${backup.id}: ${name} is missing or does not match its recorded sha256`, {
        server,
        path: tree.source.where(name),
      });
    }
  }
  const manifest = await readStoredManifest(tree);
  const oids = manifest.tablespaces.map((t) => t.oid).sort();
  // A tablespace's root holds at least its version directory (PG_15_…): recorded, or stored.
  const stored =
    manifest.formatVersion === 4
      ? [...new Set((manifest.dirs ?? []).filter((d) => d.path.startsWith('tablespaces/')).map((d) => d.path.split('/')[1]!))]
      : await readdir(path.join(tree.dir ?? '', 'tablespaces')).catch(() => [] as string[]);
  for (const oid of oids) {
    if (!stored.includes(oid))
      throw new PgbkError('CATALOG', `backup ${backup.id}: tablespace ${oid} is missing`, {
        server,
        path: `${tree.where}${tree.where.endsWith('/') ? '' : '/'}tablespaces`,
      });
  }
  return { tablespaceOids: oids, bytes: manifest.files.reduce((a, f) => a + f.size, 0), files: manifest.files.length, manifest };
}

/** Objects of one file read at once for a tar stream (object storage: GETs in flight). */
const TAR_READ_AHEAD = 8;

/** Objects being restored at once per thread: one decompresses while another's write waits on the disk. */
const JOBS_PER_THREAD = 3;

/** Threads of a restore: every core, up to 4 (past that the disk is the limit); PGBK_RESTORE_THREADS overrides. */
export function restoreThreads(): number {
  const env = Number(process.env['PGBK_RESTORE_THREADS']);
  return Number.isInteger(env) && env >= 1 && env <= 64 ? env : Math.max(1, Math.min(4, availableParallelism()));
}

/** Worker threads reading, decompressing, checking and writing stored objects (restore-worker.ts). */
class RestorePool {
  private readonly workers: { readonly worker: Worker; busy: number }[] = [];
  private readonly waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();
  private nextId = 0;
  private failure: Error | undefined;
  private readonly slotFreed: (() => void)[] = [];

  constructor(
    count: number,
    private readonly server: string,
  ) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(new URL('./restore-worker.js', import.meta.url));
      const slot = { worker, busy: 0 };
      worker.on('message', (r: RestoreResult) => {
        slot.busy--;
        const w = this.waiting.get(r.id);
        this.waiting.delete(r.id);
        this.slotFreed.shift()?.();
        if (r.error === undefined) w?.resolve();
        else w?.reject(this.errorOf(r.error));
      });
      worker.on('error', (e: Error) => this.fail(e));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`restore worker exited ${code}`));
      });
      this.workers.push(slot);
    }
  }

  private errorOf(e: NonNullable<RestoreResult['error']>): Error {
    if (e.pgbkCode !== undefined) return new PgbkError(e.pgbkCode, e.message, { server: this.server, path: e.path });
    const err = new Error(e.message) as NodeJS.ErrnoException;
    if (e.errno !== undefined) err.code = e.errno;
    if (e.path !== undefined) err.path = e.path;
    return err;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    for (const f of this.slotFreed.splice(0)) f();
  }

  /**
   * Start writing `object` at `position` of `fd` (waits first while every thread is full); `done`
   * settles once written. An object a thread cannot read itself (object storage) is fetched here
   * first, within its slot: the slots bound the GETs in flight as they bound the writes.
   */
  async submit(fd: number, position: number, object: StoredObject, tree: StoredTree): Promise<{ readonly done: Promise<void> }> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
      if (slot.busy < JOBS_PER_THREAD) {
        slot.busy++;
        const id = this.nextId++;
        const done = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
        if (object.chunk === undefined && object.named === undefined) {
          slot.worker.postMessage({ id, fd, position, object, server: this.server } satisfies RestoreJob);
        } else {
          readStoredBytes(object, this.server, tree).then(
            (stored) => slot.worker.postMessage({ id, fd, position, object, server: this.server, stored } satisfies RestoreJob),
            (err: unknown) => {
              slot.busy--;
              const w = this.waiting.get(id);
              this.waiting.delete(id);
              this.slotFreed.shift()?.();
              w?.reject(err as Error);
            },
          );
        }
        return { done };
      }
      await new Promise<void>((r) => this.slotFreed.push(r));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/** One target file being restored: its objects in flight, then mode, flush and close. */
async function restoreFile(
  pool: RestorePool,
  tree: StoredTree,
  target: string,
  objects: readonly StoredObject[],
  mode: number,
): Promise<{ readonly done: Promise<void> }> {
  const fd = await openAsync(target, 'wx', 0o600);
  const writes: Promise<void>[] = [];
  try {
    let position = 0;
    for (const o of objects) {
      const { done: w } = await pool.submit(fd, position, o, tree);
      w.catch(() => undefined); // awaited below
      writes.push(w);
      position += o.length;
    }
  } catch (err) {
    await Promise.allSettled(writes);
    await closeAsync(fd);
    throw err;
  }
  const done = (async (): Promise<void> => {
    try {
      const results = await Promise.allSettled(writes);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      await fchmodAsync(fd, mode);
      // Durable as it is restored, like pgBackRest's restore: the data directory is complete on
      // disk when the command returns, whatever happens before PostgreSQL starts.
      await fdatasyncAsync(fd);
    } finally {
      await closeAsync(fd);
    }
  })();
  return { done };
}

/**
 * Rebuild stored root `storedAs` ("data" or "tablespaces/<oid>") of the backup `tree` into
 * dest (exists, empty), durably (every file and directory flushed). Files are rebuilt in parallel:
 * each stored object (1 MiB chunk) is read, decompressed, checked and written at its offset by a
 * pool of worker threads. Throws a CATALOG PgbkError naming the first damaged chunk.
 */
export async function copyTreeInto(tree: StoredTree, storedAs: string, dest: string, server: string): Promise<void> {
  const manifest = await readStoredManifest(tree);
  const asRoot = process.getuid?.() === 0;
  const dirs: { file: string; mtimeMs: number }[] = [{ file: dest, mtimeMs: Number.NaN }];
  const pool = new RestorePool(restoreThreads(), server);
  /** Files whose objects are in flight: their times and owner are set once they are complete. */
  const pending = new Set<Promise<void>>();
  let failure: unknown;
  const track = (p: Promise<void>): void => {
    const t = p.then(
      () => undefined,
      (err: unknown) => {
        failure ??= err;
      },
    );
    pending.add(t);
    void t.then(() => pending.delete(t));
  };
  try {
    for await (const e of walkStoredRoot(tree, storedAs, manifest, server)) {
      if (failure !== undefined) break;
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
        const { done: written } = await restoreFile(pool, tree, target, e.objects, e.mode);
        const owner = asRoot && uid !== undefined && gid !== undefined ? { uid, gid } : undefined;
        track(
          written.then(async () => {
            await utimes(target, e.mtimeMs / 1000, e.mtimeMs / 1000);
            if (owner !== undefined) await lchown(target, owner.uid, owner.gid);
          }),
        );
        continue;
      }
      if (asRoot && uid !== undefined && gid !== undefined) await lchown(target, uid, gid);
    }
    while (pending.size > 0) await Promise.all([...pending]);
    if (failure !== undefined) throw failure;
    // Directory times last: creating their entries moved them. Then every directory flushed.
    for (const d of dirs.slice(1).reverse()) await utimes(d.file, d.mtimeMs / 1000, d.mtimeMs / 1000);
    await mapLimited(
      dirs.map((d) => d.file),
      16,
      fsyncDir,
    );
  } catch (err) {
    throw toPgbkError(err, { server, path: dest });
  } finally {
    while (pending.size > 0) await Promise.all([...pending]); // nothing still writing when the caller empties dest
    await pool.close();
  }
}

/**
 * A tar stream of one stored root of an `ssh` backup ("data" or "tablespaces/<oid>"), paths
 * relative to that root, ready for `tar -x` on the target host; files reassembled from their
 * chunks, each checked against its recorded sha256 as it is read. `done` settles once the stream
 * has ended: it rejects when the stored tree could not be read completely or a chunk is damaged
 * (the stream then ends early, without the end-of-archive blocks, so `tar -x` fails too).
 */
export function sshBackupTarStream(
  tree: StoredTree,
  storedAs: string,
  server: string,
): { readonly stream: NodeJS.ReadableStream; readonly done: Promise<void> } {
  const out = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  const push = async (b: Buffer): Promise<void> => {
    if (!out.write(b)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  const done = (async (): Promise<void> => {
    try {
      const manifest = await readStoredManifest(tree);
      const uid = manifest.owner?.uid ?? 0;
      const gid = manifest.owner?.gid ?? 0;
      await push(tarHeader({ name: '.', type: 'dir', size: 0, mode: 0o700, mtimeMs: Date.now(), uid, gid }));
      for await (const e of walkStoredRoot(tree, storedAs, manifest, server)) {
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
          // Read ahead within the file (object storage: several GETs in flight), written in order.
          const reads = e.objects.map(() => undefined as Promise<Buffer> | undefined);
          const start = (i: number): void => {
            if (i < e.objects.length && reads[i] === undefined) {
              const p = readStoredObject(e.objects[i]!, server, tree);
              p.catch(() => undefined); // awaited in order below
              reads[i] = p;
            }
          };
          for (let i = 0; i < e.objects.length; i++) {
            for (let j = i; j < i + TAR_READ_AHEAD; j++) start(j);
            await push(await reads[i]!);
            reads[i] = undefined;
          }
          const pad = padding(size);
          if (pad > 0) await push(Buffer.alloc(pad));
        }
      }
      await push(tarEnd());
      out.end();
    } catch (err) {
      out.end();
      throw toPgbkError(err, { server, path: `${tree.where}${tree.where.endsWith('/') ? '' : '/'}${storedAs}` });
    }
  })();
  return { stream: out, done };
}
