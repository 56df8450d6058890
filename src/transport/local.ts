/**
 * The database host is this machine: programs are spawned directly (argument arrays, no shell) and
 * files go through node:fs.
 */

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, readdir, realpath, rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fsyncDir, tempPathFor } from '../lib/atomic.js';
import { PgbkError } from '../errors.js';
import { collect } from './collect.js';
import type { DirEntry, ExecProcess, ExitStatus, FileInfo, FileType, RunResult, Transport } from './transport.js';

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): FileType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

function ioError(err: unknown, file: string): PgbkError {
  const e = err as NodeJS.ErrnoException;
  return new PgbkError(e.code === 'ENOENT' ? 'NOT_FOUND' : 'CATALOG', `${file}: ${e.message}`, { path: file, cause: err });
}

/**
 * A spawned child (all three stdio piped) as the Transport's ExecProcess: a failure to start is
 * written to its stderr and ends `done` with no code, as a program that could not run.
 */
export function execProcessOf(child: ChildProcessWithoutNullStreams, cmd: string): ExecProcess {
  const done = new Promise<ExitStatus>((resolve) => {
    child.once('error', (err) => {
      child.stderr.push(`${cmd}: ${err.message}\n`);
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

export class LocalTransport implements Transport {
  readonly description = 'local';

  exec(argv: readonly string[], opts: { readonly env?: Readonly<Record<string, string>> } = {}): ExecProcess {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new PgbkError('INTERNAL', 'exec: empty argv');
    return execProcessOf(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } }), cmd);
  }

  run(argv: readonly string[], input?: Buffer | string): Promise<RunResult> {
    return collect(this.exec(argv), input);
  }

  readStream(file: string): Readable {
    const out = new PassThrough();
    const src = createReadStream(file, { highWaterMark: 1 << 20 });
    src.once('error', (err) => out.destroy(ioError(err, file)));
    src.pipe(out);
    return out;
  }

  async writeFile(file: string, source: Readable | Buffer | string, mode = 0o600): Promise<void> {
    const tmp = tempPathFor(file);
    let fh;
    try {
      fh = await open(tmp, 'wx', mode);
    } catch (err) {
      throw ioError(err, file);
    }
    try {
      if (typeof source === 'string' || Buffer.isBuffer(source)) await fh.writeFile(source);
      else for await (const chunk of source) await fh.write(chunk as Buffer);
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, file);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err instanceof PgbkError ? err : ioError(err, file);
    }
    await fsyncDir(path.dirname(file));
  }

  async stat(file: string): Promise<FileInfo | undefined> {
    try {
      const st = await lstat(file);
      return { type: typeOf(st), size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(err, file);
    }
  }

  async list(dir: string): Promise<DirEntry[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      throw ioError(err, dir);
    }
    const entries: DirEntry[] = [];
    for (const name of names.sort()) {
      const info = await this.stat(path.join(dir, name));
      if (info !== undefined) entries.push({ name, ...info });
    }
    return entries;
  }

  async realPath(file: string): Promise<string> {
    const abs = path.resolve(file);
    const tail: string[] = [];
    let cur = abs;
    for (;;) {
      try {
        return path.join(await realpath(cur), ...tail.reverse());
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PgbkError('USAGE', (err as Error).message, { path: abs, cause: err });
      }
      const isLink = await lstat(cur).then(
        (st) => st.isSymbolicLink(),
        () => false,
      );
      if (isLink) throw new PgbkError('USAGE', `${cur} is a symbolic link to a missing target`, { path: abs });
      const parent = path.dirname(cur);
      if (parent === cur) return path.join(cur, ...tail.reverse());
      tail.push(path.basename(cur));
      cur = parent;
    }
  }

  async mkdir(dir: string, mode: number): Promise<void> {
    try {
      // The parents with the default mode, the last one with `mode` (as `mkdir -p -m` over SSH):
      // Node's recursive mkdir gives `mode` to every directory it makes, and a parent made 0700
      // by root keeps the restored server's owner out of its own data directory.
      await mkdir(path.dirname(dir), { recursive: true });
      await mkdir(dir, { mode }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      await chmod(dir, mode);
    } catch (err) {
      throw ioError(err, dir);
    }
  }

  async remove(paths: readonly string[]): Promise<void> {
    for (const p of paths) {
      try {
        await rm(p, { recursive: true, force: true });
      } catch (err) {
        throw ioError(err, p);
      }
    }
  }

  async symlink(target: string, link: string): Promise<void> {
    try {
      await rm(link, { recursive: true, force: true });
      await symlink(target, link);
    } catch (err) {
      throw ioError(err, link);
    }
  }

  async chownLike(reference: string, paths: readonly string[], recursive = false): Promise<void> {
    let owner: { uid: number; gid: number };
    try {
      owner = await stat(reference);
    } catch (err) {
      throw ioError(err, reference);
    }
    const walk = async (p: string): Promise<void> => {
      try {
        await lchown(p, owner.uid, owner.gid);
        if (recursive && (await lstat(p)).isDirectory()) for (const n of await readdir(p)) await walk(path.join(p, n));
      } catch (err) {
        throw err instanceof PgbkError ? err : ioError(err, p);
      }
    };
    for (const p of paths) await walk(p);
  }

  async userId(): Promise<number> {
    return process.getuid?.() ?? -1;
  }

  async close(): Promise<void> {
    // nothing held open
  }
}

export function localTransport(): Transport {
  return new LocalTransport();
}

/** A Readable of a Buffer or string, for sources given whole. */
export function readableOf(data: Buffer | string): Readable {
  return Readable.from([typeof data === 'string' ? Buffer.from(data) : data]);
}
