/**
 * A stored backup as restore reads it, whatever the backup method: pg_basebackup's tars
 * (base.tar[.zst|.gz], <oid>.tar…, backup_manifest) or the `ssh` method's chunked trees (data/,
 * tablespaces/<oid>/, files.json; written by copyTreeInto on this host, streamed as a tar by
 * sshBackupTarStream to another: both in src/backup/ssh/restore-tree.ts, which owns that layout).
 * Everything that can be checked without writing is checked when the layout is opened; `unpack`
 * then streams one stored root into a directory on the target host.
 */

import { Readable } from 'node:stream';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import { sha256OfFile } from '../lib/checksum.js';
import type { DoneBackup } from '../model/types.js';
import type { TargetHost } from './host.js';
import { decompressorFor, readTarMember } from './remote-tar.js';
import type { StartedRead, StoredSource } from '../catalog/stored-source.js';
import type { StoredTree } from '../backup/ssh/stored-tree.js';
import { formatTablespaceMap } from './tablespace-map.js';
import { unpackInto } from './unpack.js';
import { findOpenssl, unpackFile } from './unpack-file.js';

export interface UnpackRun {
  readonly host: TargetHost;
  readonly dir: string;
  readonly onProgress?: (storedBytes: number, files: number) => void;
  readonly signal?: AbortSignal;
}

/** What is stored for the backup: the data root and the tablespaces, by method. */
export interface StoredLayout {
  readonly oids: readonly string[];
  /** Stored tar files (none for the ssh method), for the log. */
  readonly storedFiles: number;
  /** Bytes unpack reads in all (progress total; 0 when unknown). */
  readonly totalBytes: number;
  /** The catalog's backup_manifest, its sha256 checked; undefined when the method keeps none. */
  readonly manifest: string | undefined;
  /** The method's own count of bytes and files, reported instead of what unpack counted. */
  readonly counted: { readonly bytes: number; readonly files: number } | undefined;
  /** The backup's tablespace_map (the source's locations), read here; undefined: none. */
  readMap(): Promise<string | undefined>;
  /** Unpack the data directory (oid undefined) or one tablespace into run.dir. */
  unpack(oid: string | undefined, run: UnpackRun): Promise<{ readonly storedBytes: number; readonly files: number }>;
  /** Remove what opening it made locally (object storage: the manifest's temp copy). */
  dispose(): Promise<void>;
}

const TAR_RE = /^(base|\d+)\.tar(\.zst|\.gz)?$/;

async function storedTars(source: StoredSource, checksums: Readonly<Record<string, string>>, server: string, id: string): Promise<string[]> {
  const names = (await source.names()).filter((n) => TAR_RE.test(n)).sort();
  const dir = path.dirname(source.where('base.tar'));
  if (!names.some((n) => n.startsWith('base.'))) {
    throw new PgbkError('CATALOG', `backup ${id} has no base.tar[.zst|.gz]`, { server, path: dir });
  }
  for (const n of names) {
    if (checksums[n] === undefined) throw new PgbkError('CATALOG', `backup ${id}: ${n} has no recorded checksum`, { server, path: dir });
  }
  for (const n of Object.keys(checksums)) {
    if (TAR_RE.test(n) && !names.includes(n)) {
      throw new PgbkError('CATALOG', `backup ${id}: ${n} is recorded but missing`, { server, path: source.where(n) });
    }
  }
  return names;
}

async function sshLayout(tree: StoredTree, backup: DoneBackup, localTarget: boolean): Promise<StoredLayout> {
  const server = backup.server;
  // A local catalog's tree restored on this host: its threads start now, beside the checks.
  let threads = localTarget ? import('./chunk-tree-copy.js').then((m) => (m.isLocalChunkTree(tree) ? m.TreeThreads.start() : undefined)) : undefined;
  threads?.catch(() => undefined);
  const stopThreads = async (): Promise<void> => {
    const t = threads;
    threads = undefined;
    await t?.then((p) => p?.close()).catch(() => undefined);
  };
  const { checkSshBackup, copyTreeInto, sshBackupTarStream } = await import('../backup/ssh/restore-tree.js');
  let layout: Awaited<ReturnType<typeof checkSshBackup>>;
  try {
    layout = await checkSshBackup(tree, backup);
  } catch (err) {
    await stopThreads();
    throw err;
  }
  return {
    oids: layout.tablespaceOids,
    storedFiles: 0,
    totalBytes: 0,
    manifest: undefined,
    counted: { bytes: layout.bytes, files: layout.files },
    dispose: stopThreads,
    // files.json (checksum verified above) records each tablespace's location on the database host.
    readMap: async () => formatTablespaceMap(layout.manifest.tablespaces),
    async unpack(oid, run) {
      const storedAs = oid === undefined ? 'data' : `tablespaces/${oid}`;
      if (run.host.local) {
        // On this host the tree is written straight from its chunks (a local catalog's by
        // chunk-tree-copy.ts, a chunk store's by restore-tree.ts); the counts are the method's own (`counted`).
        const { copyChunkTree, isLocalChunkTree } = await import('./chunk-tree-copy.js');
        if (isLocalChunkTree(tree)) await copyChunkTree(tree, layout.manifest, storedAs, run.dir, server, await threads);
        else await copyTreeInto(tree, storedAs, run.dir, server);
        return { storedBytes: 0, files: 0 };
      }
      const tar = sshBackupTarStream(tree, storedAs, server);
      tar.done.catch(() => undefined);
      let r;
      try {
        r = await unpackInto({
          ...run,
          source: tar.stream as AsyncIterable<unknown>,
          decompress: undefined,
          what: `${tree.where}${tree.where.endsWith('/') ? '' : '/'}${storedAs}`,
          server,
        });
      } catch (err) {
        // A damaged chunk ends the stream early, so tar fails too: the chunk is the news. The stream
        // has settled by then when it failed; when it did not, it must not be waited for (nobody reads it).
        const early = await Promise.race([
          tar.done.then(
            () => undefined,
            (e: unknown) => e,
          ),
          new Promise((r) => setImmediate(() => r(undefined))),
        ]);
        throw early ?? err;
      }
      await tar.done; // read to its end: settled
      return r;
    },
  };
}

async function tarLayout(source: StoredSource, backup: DoneBackup): Promise<StoredLayout> {
  const { server, id } = backup;
  const checksums = backup.checksums ?? {};
  const tars = await storedTars(source, checksums, server, id);
  // pg_verifybackup reads a local file: on object storage a temp copy, removed by dispose().
  const manifest = await source.localFile('backup_manifest');
  const manifestSha = checksums['backup_manifest'];
  if (manifestSha === undefined || (await sha256OfFile(manifest.path).catch(() => 'unreadable')) !== manifestSha) {
    await manifest.dispose();
    throw new PgbkError('CATALOG', `backup ${id}: backup_manifest is missing or does not match its recorded sha256`, {
      server,
      path: source.where('backup_manifest'),
    });
  }
  let sizes: number[];
  try {
    sizes = await Promise.all(tars.map((n) => source.size(n)));
  } catch (err) {
    await manifest.dispose();
    throw err;
  }
  const base = tars.find((n) => n.startsWith('base.'))!;
  const tarOf = (oid: string | undefined): string => (oid === undefined ? base : tars.find((n) => n.startsWith(`${oid}.tar`))!);
  // The data directory's tar is fetched from now on, while the restore's checks run (reading
  // writes nothing): from object storage its first ranges are in memory when unpacking starts.
  let early: StartedRead | undefined = source.start(base, sizes[tars.indexOf(base)]!);
  return {
    oids: tars.filter((n) => !n.startsWith('base.')).map((n) => n.slice(0, n.indexOf('.'))),
    storedFiles: tars.length,
    totalBytes: sizes.reduce((a, b) => a + b, 0),
    manifest: manifest.path,
    counted: undefined,
    async readMap() {
      // A read that fails (the object vanished, a range came back short) must not be an 'error'
      // event nobody listens to on the piped stream (that ends the process): the source just ends
      // here, tar then fails on the cut archive, and the read's own error, naming the file, is thrown.
      let failure: unknown;
      const guarded = async function* (): AsyncGenerator<Buffer> {
        try {
          yield* source.open(base);
        } catch (err) {
          failure = err;
        }
      };
      let map: string | undefined;
      try {
        map = await readTarMember(Readable.from(guarded()), decompressorFor(base), 'tablespace_map');
      } catch (err) {
        throw failure ?? err;
      }
      if (failure !== undefined) throw failure;
      return map;
    },
    async unpack(oid, run) {
      const name = tarOf(oid);
      const decompress = decompressorFor(name);
      const file = source.localPath?.(name);
      // A compressed file of a local catalog unpacked on this host: tee, the decompressor, tar and
      // openssl read it without Node in between (unpack-file.ts), when openssl is installed.
      if (run.host.local && file !== undefined && decompress !== undefined && findOpenssl() !== null) {
        if (name === base) {
          early?.cancel();
          early = undefined;
        }
        return unpackFile({ ...run, sourceFile: file, decompress, what: source.where(name), server, expectedSha256: checksums[name]! });
      }
      const started = name === base ? early : undefined;
      if (started !== undefined) early = undefined;
      try {
        return await unpackInto({
          ...run,
          source: (started?.bytes ?? source.open(name)) as AsyncIterable<unknown>,
          decompress,
          what: source.where(name),
          server,
          expectedSha256: checksums[name]!,
        });
      } finally {
        // Read to its end by now, unless unpacking failed before it read any of it.
        started?.cancel();
      }
    },
    dispose: () => {
      early?.cancel();
      early = undefined;
      return manifest.dispose();
    },
  };
}

/**
 * Open the stored backup; refuses (before anything is written) what is missing or damaged. An
 * `ssh` backup is read as its StoredTree (a chunk tree in a directory, or a chunk store's);
 * `localTarget`: it will be unpacked on this host (a local tree's threads start at once).
 */
export async function storedLayout(
  source: StoredSource,
  backup: DoneBackup,
  tree?: StoredTree,
  opts: { readonly localTarget?: boolean } = {},
): Promise<StoredLayout> {
  if (backup.method !== 'ssh') return tarLayout(source, backup);
  if (tree === undefined) throw new Error(`internal: ssh backup ${backup.id} opened without its stored tree`);
  return sshLayout(tree, backup, opts.localTarget === true);
}
