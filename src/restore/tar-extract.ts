/**
 * `tar -x` in this process, for a restore on this host (unpack.ts): the decompressor's output is
 * parsed here and each member written with positional writes on libuv's thread pool, so the
 * writing (most of an unpack's cost: page allocation and copies into the page cache) runs on other
 * cores than the parsing, where GNU tar read and wrote in one thread, and each file is fdatasync'ed
 * as soon as it is complete (pgBackRest's restore does the same), not by a pass at the end.
 *
 * Measured (bench/restore.ts, `pgbench -i -s 50`): see bench/RESULTS-2026-12-03.md, Session 13.
 *
 * What it accepts is what pg_basebackup and pgbk's own tar streams hold: ustar/GNU headers with
 * GNU long names ('L', 'K') and pax records ('x'; 'g' ignored), regular files, directories and
 * symbolic links. Anything else (hard links, devices, FIFOs) is refused, as is every member that
 * would land outside the target directory:
 * - names: absolute, or with a `..` component, are refused (GNU tar's default too);
 * - symbolic links are created only after every other member (GNU tar's placeholders do the same),
 *   so no member is ever written through a link the archive made; and the real path of each
 *   directory a member is written into is checked to be inside the target's real path (a link that
 *   was there before, or made by someone else meanwhile, cannot redirect a write);
 * - files are opened with O_NOFOLLOW, a final component that is a link fails.
 * As root, owners are kept as recorded (GNU tar's default for root), and modes and times always.
 */

import { constants } from 'node:fs';
import { chmod, chown, lchown, lutimes, mkdir, open, realpath, symlink, utimes, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';

const BLOCK = 512;
/** Bytes of one file gathered before they are written (one writev each). */
const WRITE_BYTES = 1 << 20;
/** Bytes handed to the thread pool and not yet written: past it, push() waits. */
const MAX_IN_FLIGHT = 32 << 20;
/** A large file is fdatasync'ed each time this much more of it was written (write-back early). */
const SYNC_EVERY = 64 << 20;

/** The archive asked for something refused here: the stored backup is not what pgbk restores. */
export class TarExtractError extends PgbkError {
  constructor(message: string) {
    super('CATALOG', message);
    this.name = 'TarExtractError';
  }
}

interface Header {
  readonly name: string;
  readonly flag: string;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly link: string;
}

function cstring(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul === -1 ? s.length : nul).toString('utf8');
}

function octal(b: Buffer, start: number, len: number): number {
  const f = b.subarray(start, start + len);
  if ((f[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian, the first byte's top bit is the flag.
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = cstring(b, start, len).trim();
  if (s === '') return 0;
  const v = parseInt(s, 8);
  if (!Number.isFinite(v)) throw new TarExtractError('tar stream corrupt: a numeric field is not octal');
  return v;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === octal(h, 148, 8);
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    const sp = body.indexOf(0x20, at);
    if (sp === -1) break;
    const len = parseInt(body.subarray(at, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0 || at + len > body.length) throw new TarExtractError('tar stream corrupt: bad pax record');
    const rec = body.subarray(sp + 1, at + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

/**
 * The member's path relative to the target ('' for the target itself), or a refusal: absolute
 * names and `..` components never reach the file system.
 */
export function memberPath(name: string): string {
  if (name.startsWith('/')) throw new TarExtractError(`tar member ${JSON.stringify(name)} has an absolute name: refused`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new TarExtractError(`tar member ${JSON.stringify(name)} climbs out of the target with "..": refused`);
  if (name.includes('\0')) throw new TarExtractError(`tar member ${JSON.stringify(name)} has a NUL in its name: refused`);
  return parts.join('/');
}

/** One regular file being written: its handle, the bytes gathered, the writes in flight. */
interface OpenFile {
  readonly rel: string;
  readonly header: Header;
  readonly handle: Promise<FileHandle>;
  position: number;
  gathered: Buffer[];
  gatheredBytes: number;
  syncedAt: number;
  /** The chain of this file's writes (in order; each waits for the one before). */
  chain: Promise<void>;
}

export interface TarExtractOptions {
  /** Called each time a member is complete (the file count of progress). */
  readonly onMember?: (files: number) => void;
}

/**
 * Feed the tar stream with push() (awaiting each: it waits while too much is being written), then
 * finish(). After a failure every later call rejects with it; abort() stops without waiting.
 */
export class TarExtractor {
  readonly #dir: string;
  readonly #opts: TarExtractOptions;
  #root: string | undefined;
  #asRoot = process.getuid?.() === 0;
  #pending: Buffer | undefined;
  #state: 'header' | 'meta' | 'body' | 'pad' | 'end' = 'header';
  #remaining = 0;
  #pad = 0;
  #meta: { flag: string; parts: Buffer[]; size: number } | undefined;
  #longName: string | undefined;
  #longLink: string | undefined;
  #pax = new Map<string, string>();
  #zeroBlocks = 0;
  #file: OpenFile | undefined;
  /** Directories known to exist inside the target (relative paths; '' is the target). */
  readonly #dirs = new Map<string, Promise<void>>();
  readonly #dirTimes: { rel: string; mtime: number }[] = [];
  readonly #links: Header[] = [];
  readonly #work = new Set<Promise<void>>();
  #inFlight = 0;
  #roomWaiters: (() => void)[] = [];
  #failure: unknown;
  #files = 0;

  constructor(dir: string, opts: TarExtractOptions = {}) {
    this.#dir = dir;
    this.#opts = opts;
  }

  get files(): number {
    return this.#files;
  }

  async push(input: Buffer): Promise<void> {
    this.#check();
    this.#root ??= await realpath(this.#dir);
    let buf = this.#pending === undefined ? input : Buffer.concat([this.#pending, input]);
    this.#pending = undefined;
    while (buf.length > 0) {
      this.#check();
      switch (this.#state) {
        case 'end':
          return; // zero padding after the end-of-archive blocks
        case 'body': {
          const n = Math.min(this.#remaining, buf.length);
          this.#data(buf.subarray(0, n));
          this.#remaining -= n;
          buf = buf.subarray(n);
          if (this.#remaining === 0) this.#endFile();
          break;
        }
        case 'pad': {
          const n = Math.min(this.#pad, buf.length);
          this.#pad -= n;
          buf = buf.subarray(n);
          if (this.#pad === 0) this.#state = 'header';
          break;
        }
        case 'meta': {
          const meta = this.#meta!;
          const padded = Math.ceil(meta.size / BLOCK) * BLOCK;
          const have = meta.parts.reduce((a, p) => a + p.length, 0);
          const n = Math.min(padded - have, buf.length);
          meta.parts.push(buf.subarray(0, n));
          buf = buf.subarray(n);
          if (have + n === padded) {
            this.#finishMeta(meta.flag, Buffer.concat(meta.parts).subarray(0, meta.size));
            this.#meta = undefined;
            this.#state = 'header';
          }
          break;
        }
        case 'header': {
          if (buf.length < BLOCK) {
            this.#pending = Buffer.from(buf); // a copy: the caller may reuse its buffer
            return;
          }
          const h = buf.subarray(0, BLOCK);
          buf = buf.subarray(BLOCK);
          await this.#header(h);
          break;
        }
      }
      if (this.#inFlight > MAX_IN_FLIGHT) await new Promise<void>((r) => this.#roomWaiters.push(r));
    }
  }

  /** The stream has ended: wait for every write, create the links, set directory times. */
  async finish(): Promise<number> {
    this.#check();
    if (this.#state === 'body' || this.#state === 'meta' || this.#pending !== undefined) {
      throw this.#fail(new TarExtractError('tar stream torn: it ends inside a member'));
    }
    await this.#drain();
    this.#check();
    try {
      for (const l of this.#links) {
        const rel = memberPath(l.name);
        await this.#ensureParent(rel);
        const file = path.join(this.#root ?? this.#dir, rel);
        await symlink(l.link, file);
        if (this.#asRoot) await lchown(file, l.uid, l.gid);
        await lutimes(file, l.mtime, l.mtime);
        this.#counted();
      }
      // Last: creating entries moved the directories' times.
      for (const d of this.#dirTimes.reverse()) await utimes(path.join(this.#root ?? this.#dir, d.rel), d.mtime, d.mtime);
      await Promise.all([...this.#dirs.keys()].map((rel) => fsyncDir(path.join(this.#root ?? this.#dir, rel))));
    } catch (err) {
      throw this.#fail(err);
    }
    return this.#files;
  }

  /** Stop: later pushes fail; waits for what is already on the thread pool (nothing writes after). */
  async abort(reason: unknown): Promise<void> {
    this.#fail(reason);
    await this.#drain().catch(() => undefined);
    const f = this.#file;
    this.#file = undefined;
    if (f !== undefined) {
      await f.chain.catch(() => undefined);
      await (await f.handle.catch(() => undefined))?.close();
    }
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  #fail(err: unknown): unknown {
    this.#failure ??= err;
    for (const w of this.#roomWaiters.splice(0)) w();
    return this.#failure;
  }

  async #drain(): Promise<void> {
    while (this.#work.size > 0) await Promise.allSettled([...this.#work]);
  }

  #track(p: Promise<void>): void {
    const t = p.catch((err: unknown) => {
      this.#fail(err);
    });
    this.#work.add(t);
    void t.then(() => this.#work.delete(t));
  }

  #counted(): void {
    this.#files++;
    this.#opts.onMember?.(this.#files);
  }

  #finishMeta(flag: string, body: Buffer): void {
    if (flag === 'L') this.#longName = cstring(body, 0, body.length);
    else if (flag === 'K') this.#longLink = cstring(body, 0, body.length);
    else if (flag === 'x') for (const [k, v] of parsePax(body)) this.#pax.set(k, v);
    // 'g': global pax records; nothing pgbk reads depends on them.
  }

  async #header(h: Buffer): Promise<void> {
    if (h.every((x) => x === 0)) {
      if (++this.#zeroBlocks === 2) this.#state = 'end';
      return;
    }
    if (this.#zeroBlocks > 0) throw this.#fail(new TarExtractError('tar stream corrupt: data after a zero block'));
    if (!checksumOk(h)) throw this.#fail(new TarExtractError('tar stream corrupt: header checksum mismatch'));
    const flag = String.fromCharCode(h[156]!);
    const paxSize = this.#pax.get('size');
    const size = paxSize !== undefined ? Number(paxSize) : octal(h, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw this.#fail(new TarExtractError('tar stream corrupt: bad member size'));
    if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
      const metaSize = octal(h, 124, 12);
      if (metaSize > 1 << 20) throw this.#fail(new TarExtractError('tar stream corrupt: an extended header larger than 1 MiB'));
      if (metaSize === 0) this.#finishMeta(flag, Buffer.alloc(0));
      else {
        this.#meta = { flag, parts: [], size: metaSize };
        this.#state = 'meta';
      }
      return;
    }
    const magic = h.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cstring(h, 345, 155) : '';
    const base = cstring(h, 0, 100);
    const header: Header = {
      name: this.#pax.get('path') ?? this.#longName ?? (prefix === '' ? base : `${prefix}/${base}`),
      flag,
      size,
      mode: octal(h, 100, 8) & 0o7777,
      uid: this.#pax.has('uid') ? Number(this.#pax.get('uid')) : octal(h, 108, 8),
      gid: this.#pax.has('gid') ? Number(this.#pax.get('gid')) : octal(h, 116, 8),
      mtime: this.#pax.has('mtime') ? Number(this.#pax.get('mtime')) : octal(h, 136, 12),
      link: this.#pax.get('linkpath') ?? this.#longLink ?? cstring(h, 157, 100),
    };
    this.#longName = undefined;
    this.#longLink = undefined;
    this.#pax = new Map();
    let rel: string;
    try {
      rel = memberPath(header.name);
    } catch (err) {
      throw this.#fail(err);
    }
    switch (flag) {
      case '0':
      case '\0':
      case '7':
        if (rel === '') throw this.#fail(new TarExtractError(`tar member ${JSON.stringify(header.name)} is a file named like the target`));
        await this.#startFile(rel, header);
        return;
      case '5':
        this.#skipBody(size);
        await this.#directory(rel, header);
        return;
      case '2':
        if (rel === '') throw this.#fail(new TarExtractError(`tar member ${JSON.stringify(header.name)} is a link named like the target`));
        this.#skipBody(size);
        this.#links.push(header);
        return;
      default:
        throw this.#fail(
          new TarExtractError(`tar member ${JSON.stringify(header.name)} is of type ${JSON.stringify(flag)} (not a file, directory or symbolic link): refused`),
        );
    }
  }

  #skipBody(size: number): void {
    if (size === 0) return;
    this.#pad = Math.ceil(size / BLOCK) * BLOCK;
    this.#state = 'pad';
  }

  /** A directory member: created (with its parents) and given its mode, owner and time. */
  async #directory(rel: string, h: Header): Promise<void> {
    try {
      await this.#ensureDir(rel);
      const file = path.join(this.#root!, rel);
      await chmod(file, h.mode);
      if (this.#asRoot) await chown(file, h.uid, h.gid);
      this.#dirTimes.push({ rel, mtime: h.mtime });
      this.#counted();
    } catch (err) {
      throw this.#fail(err);
    }
  }

  async #ensureParent(rel: string): Promise<void> {
    const parent = path.dirname(rel);
    await this.#ensureDir(parent === '.' ? '' : parent);
  }

  /**
   * `rel` exists as a directory whose real path is inside the target (made here with its parents
   * when missing). Checked once per directory: links are only made after every other member.
   */
  #ensureDir(rel: string): Promise<void> {
    let p = this.#dirs.get(rel);
    if (p === undefined) {
      p = (async () => {
        if (rel !== '') {
          const parent = path.dirname(rel);
          await this.#ensureDir(parent === '.' ? '' : parent);
          await mkdir(path.join(this.#root!, rel), { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'EEXIST') throw err;
          });
        }
        const real = await realpath(path.join(this.#root!, rel));
        if (real !== this.#root && !real.startsWith(`${this.#root!}${path.sep}`)) {
          throw new TarExtractError(`tar member directory ${JSON.stringify(rel)} resolves to ${real}, outside the target ${this.#root!}: refused`);
        }
      })();
      this.#dirs.set(rel, p);
    }
    return p;
  }

  async #startFile(rel: string, h: Header): Promise<void> {
    try {
      await this.#ensureParent(rel);
    } catch (err) {
      throw this.#fail(err);
    }
    const file = path.join(this.#root!, rel);
    const handle = open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
    handle.catch(() => undefined); // awaited in the chain
    const chain = handle.then(() => undefined);
    chain.catch(() => undefined); // a failed open is reported by #endFile, or the stream's failure is
    this.#file = { rel, header: h, handle, position: 0, gathered: [], gatheredBytes: 0, syncedAt: 0, chain };
    if (h.size === 0) this.#endFile();
    else {
      this.#remaining = h.size;
      this.#state = 'body';
    }
  }

  #data(chunk: Buffer): void {
    const f = this.#file!;
    f.gathered.push(chunk);
    f.gatheredBytes += chunk.length;
    if (f.gatheredBytes >= WRITE_BYTES) this.#write(f);
  }

  /** Hand the gathered bytes of `f` to the thread pool, after the file's previous write. */
  #write(f: OpenFile): void {
    const buffers = f.gathered;
    const bytes = f.gatheredBytes;
    const at = f.position;
    f.gathered = [];
    f.gatheredBytes = 0;
    f.position += bytes;
    this.#inFlight += bytes;
    const sync = f.position - f.syncedAt >= SYNC_EVERY && f.position < f.header.size;
    if (sync) f.syncedAt = f.position;
    const written = f.chain.then(async () => {
      if (this.#failure !== undefined) return;
      const fh = await f.handle;
      let done = 0;
      let bufs = buffers;
      while (done < bytes) {
        const r = await fh.writev(bufs, at + done);
        if (r.bytesWritten === 0) throw new Error(`no progress writing ${f.rel}`);
        done += r.bytesWritten;
        if (done < bytes) bufs = remainder(buffers, done);
      }
      // Write-back of a large file while the rest of it is extracted (not waited for here).
      if (sync) this.#track(fh.datasync());
    });
    f.chain = written;
    const release = (): void => {
      this.#inFlight -= bytes;
      if (this.#inFlight <= MAX_IN_FLIGHT) for (const w of this.#roomWaiters.splice(0)) w();
    };
    void written.then(release, release);
  }

  /** The file's last bytes are in: write them, then mode, owner, time, fdatasync and close. */
  #endFile(): void {
    const f = this.#file!;
    this.#file = undefined;
    this.#pad = Math.ceil(f.header.size / BLOCK) * BLOCK - f.header.size;
    this.#state = this.#pad === 0 ? 'header' : 'pad';
    if (f.gatheredBytes > 0) this.#write(f);
    const h = f.header;
    this.#track(
      (async () => {
        let fh: FileHandle | undefined;
        try {
          await f.chain;
          fh = await f.handle;
          if (this.#failure !== undefined) return;
          await fh.chmod(h.mode);
          if (this.#asRoot) await fh.chown(h.uid, h.gid);
          await fh.utimes(h.mtime, h.mtime);
          await fh.datasync();
          this.#counted();
        } finally {
          await fh?.close();
        }
      })(),
    );
  }
}

/** The buffers past the first `skip` bytes of `buffers` (after a short writev). */
function remainder(buffers: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const b of buffers) {
    if (left >= b.length) left -= b.length;
    else {
      out.push(left > 0 ? b.subarray(left) : b);
      left = 0;
    }
  }
  return out;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
