/**
 * Unpack one tar stream into a directory on the target host in a single pass: the stored bytes
 * are read once here, hashed (sha256, for the caller to compare with backup.json) and fed to
 * `tar -x` there, through the decompressor when the stored file is compressed.
 *
 * Where the decompressor runs: on this host beside tar, through a pipe sized to 1 MiB
 * (LOCAL_PIPELINE), so the decompressed bytes go from one program to the other without passing
 * through Node. Over SSH it runs here, and the decompressed stream goes to `tar -x` on the
 * database host, which then needs nothing but tar.
 *
 * tar is called with an argument array: GNU tar refuses absolute and `..` member names by default,
 * so an archive cannot write outside DIR. -v lists each member (the file count for progress).
 * -b 2048 -B: 1 MiB records, read until full (the short reads a pipe gives are harmless). As root,
 * tar keeps the owners recorded in the archive.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { PgbkError } from '../errors.js';
import { sha256Hasher } from '../lib/checksum.js';
import { exposedGc } from '../lib/v8-gc.js';
import { execProcessOf } from '../transport/local.js';
import type { ExecProcess } from '../transport/transport.js';
import { EarlyFlush, writeBackHelps } from './early-flush.js';
import { where, type TargetHost } from './host.js';

/**
 * What an aborted restore throws (Ctrl-C, a drill's time limit): tar and the decompressor have been
 * stopped by their PIDs and have exited; nothing else failed.
 */
export class RestoreAborted extends PgbkError {
  readonly aborted = true;
  /** `when`: "while unpacking base.tar.zst", "before pg_verifybackup". */
  constructor(when: string, server: string | undefined, file?: string) {
    super('INTERNAL', `restore aborted ${when}`, { server, path: file });
    this.name = 'RestoreAborted';
  }
}

export function isRestoreAborted(err: unknown): err is RestoreAborted {
  return err instanceof RestoreAborted;
}

export interface UnpackOptions {
  readonly host: TargetHost;
  readonly dir: string;
  /** The stored bytes (read exactly once). */
  readonly source: AsyncIterable<unknown>;
  /** argv of the decompressor (zstd -d -c -q, gzip -d -c), or undefined for a plain tar. */
  readonly decompress: readonly string[] | undefined;
  /** The stored file or tree, for messages. */
  readonly what: string;
  readonly server?: string;
  /** The stored bytes' recorded sha256 (backup.json): a mismatch fails after tar has finished. */
  readonly expectedSha256?: string;
  /** Called as stored bytes are read and as tar reports members. */
  readonly onProgress?: (storedBytes: number, files: number) => void;
  /** Aborting stops the decompressor and tar (Ctrl-C during a restore). */
  readonly signal?: AbortSignal;
}

export interface Unpacked {
  readonly storedBytes: number;
  readonly files: number;
  readonly sha256: string;
}

export const TAR = ['tar', '-x', '-v', '-b', '2048', '-B'];
/** LOCAL_PIPELINE's words when the decompressor failed (GNU tar's own, for `tar -I`, kept too). */
const CHILD_FAILED = /decompressor exited with status [1-9]|Child returned status [1-9]/;
/** Bytes of the pipe between the decompressor and tar (F_SETPIPE_SZ; Linux's default limit for any user). */
export const PIPE_BYTES = 1 << 20;

/**
 * On this host: `DECOMPRESSOR… | tar -x` with a 1 MiB pipe between them, as `sh -c LOCAL_PIPELINE
 * sh DIR DECOMPRESSOR…`. The pipe is what such an unpack costs on a VM: through the default
 * 64 KiB pipe (what `tar -I zstd` makes) zstd and tar switch every 64 KiB, and moving the 808 MB
 * of `pgbench -s 50` took 0.75-2.0 s where the decompression alone takes 0.27 s; with 1 MiB,
 * 0.40-0.50 s (bench/RESULTS-2026-12-03.md, Session 13). Neither tar nor zstd can size it, nor can
 * Node.js (no fcntl), so perl (in every Debian and Ubuntu system: perl-base is essential) does,
 * F_SETPIPE_SZ (1031) on the pipe it shares with tar, before tar starts reading; without perl, or
 * when the limit is lower, the pipe keeps its size and nothing else changes.
 *
 * The shell has no pipefail: the decompressor's status comes back on fd 4. SIGPIPE (141: tar
 * stopped reading, and its own status says why) is not the decompressor's failure.
 */
const LOCAL_PIPELINE = [
  'd=$1; shift',
  'exec 3>&1',
  `s=$( { { "$@" 3>&- 4>&-; echo $? >&4; } | { perl -e 'fcntl(STDIN, 1031, ${PIPE_BYTES})' 2>/dev/null 3>&- 4>&-; exec ${TAR.join(' ')} -f - -C "$d" >&3 3>&- 4>&-; }; } 4>&1 )`,
  't=$?',
  'if [ "$s" != 0 ] && [ "$s" != 141 ]; then echo "pgbk: the decompressor exited with status $s" >&2; [ "$t" = 0 ] && t=2; fi',
  'exit $t',
].join('\n');

/**
 * Stored bytes passed on between young-generation collections. Every piece read (≤ 1 MiB of a range
 * read from object storage, a file's read) is garbage once written, but V8 frees a
 * Buffer's memory only when it collects the Buffer, and Node's few small objects per piece rarely
 * fill the young generation: a collection came when the external memory had grown by ~64 MB (V8's
 * trigger), so an S3 restore of pgbench -s 50 (37 MB stored) held 60–85 MB of dead pieces at its
 * peak, every page of them faulted in fresh (on this VM, a page the host took back costs ~13 µs to
 * touch again). A scavenge every 4 MiB (~0.5 ms; only the pieces still queued survive it) lets
 * malloc hand the same memory out again.
 */
export const GC_EVERY_BYTES = 4 << 20;

async function write(sink: Writable, chunk: Buffer): Promise<void> {
  if (sink.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      sink.off('error', onError);
      resolve();
    };
    const onError = (err: Error): void => {
      sink.off('drain', onDrain);
      reject(err);
    };
    sink.once('drain', onDrain);
    sink.once('error', onError);
  });
}

/**
 * tar on this host, in a process group of its own: the decompressor it starts (-I) is in that group,
 * so an abort stops both by tar's PID (the group id) — not just tar, leaving its child to notice.
 */
function localTar(argv: readonly string[]): { proc: ExecProcess; stopGroup: () => void } {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  return {
    proc: execProcessOf(child, argv[0]!),
    stopGroup: () => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // the group is gone already
      }
    },
  };
}

function localExit(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, stderr: err.message }));
    child.once('close', (code) => resolve({ code, stderr: stderr.trim() }));
  });
}

/** The stored bytes read are not the ones backup.json recorded (both unpack paths, after tar). */
export function digestMismatch(what: string, server: string | undefined, recorded: string, read: string): PgbkError {
  return new PgbkError('CATALOG', `${what} does not match its recorded sha256 (recorded ${recorded}, read ${read})`, {
    server,
    path: what,
    hint: 'the stored backup is damaged; restore from another backup',
  });
}

export async function unpackInto(opts: UnpackOptions): Promise<Unpacked> {
  const { host, dir, what, server, decompress } = opts;
  // A function, not a narrowed property: the signal changes while this runs.
  const aborted = (): boolean => opts.signal?.aborted === true;
  if (aborted()) throw new RestoreAborted(`while unpacking ${what}`, server, what);
  // On this host, members are flushed to disk as tar finishes them (early-flush.ts); flushRestored
  // fsyncs every file at the end in any case. Asked before anything is started.
  const flushEarly = host.local && (await writeBackHelps(dir));
  let proc: ExecProcess;
  let here: ChildProcess | undefined;
  let sink: Writable;
  let stopGroup: (() => void) | undefined;
  if (decompress !== undefined && host.local) {
    ({ proc, stopGroup } = localTar(['sh', '-c', LOCAL_PIPELINE, 'sh', dir, ...decompress]));
    sink = proc.stdin;
  } else {
    proc = host.transport.exec([...TAR, '-f', '-', '-C', dir]);
    sink = proc.stdin;
    if (decompress !== undefined) {
      here = spawn(decompress[0]!, decompress.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      here.stdout!.pipe(proc.stdin);
      sink = here.stdin!;
    }
  }
  const hereDone = here === undefined ? undefined : localExit(here);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  let files = 0;
  let storedBytes = 0;
  const flush = flushEarly ? new EarlyFlush(dir) : undefined;
  proc.stdout.on('data', (d: Buffer) => {
    flush?.output(d);
    for (const byte of d) if (byte === 10) files++;
    opts.onProgress?.(storedBytes, files);
  });
  proc.stdin.on('error', () => undefined); // tar died: its exit status says why
  let pipeError: Error | undefined;
  sink.on('error', (err) => {
    pipeError ??= err; // EPIPE when the consumer died: its exit status tells why
  });
  const stop = (): void => {
    proc.kill();
    stopGroup?.();
    here?.kill();
  };
  // On abort the pipe is cut too: a write waiting for room fails at once instead of waiting for a
  // reader that is gone (over SSH nothing else would end it).
  const abort = (): void => {
    stop();
    sink.destroy(new Error('aborted'));
  };
  opts.signal?.addEventListener('abort', abort, { once: true });
  // tar gone while bytes are still on their way (over SSH nothing else would tell a write that
  // waits for room): stop feeding it, and stop the decompressor here, which nobody reads any more.
  let tarEnded = false;
  let writing = false;
  let killedHere = false;
  const abandon = (): void => {
    killedHere = here !== undefined;
    here?.kill();
    sink.destroy(new Error(`tar ended before it read all of ${what}`));
  };
  void proc.done.then(() => {
    tarEnded = true;
    if (writing) abandon();
  });

  const hash = sha256Hasher();
  const gc = exposedGc();
  let sinceGc = 0;
  try {
    for await (const chunk of opts.source) {
      const buf = chunk as Buffer;
      hash.update(buf);
      storedBytes += buf.length;
      opts.onProgress?.(storedBytes, files);
      if (pipeError !== undefined || aborted()) break;
      if (tarEnded) {
        abandon();
        break;
      }
      writing = true;
      await write(sink, buf);
      writing = false;
      sinceGc += buf.length;
      if (gc !== undefined && sinceGc >= GC_EVERY_BYTES) {
        sinceGc = 0;
        gc({ type: 'minor' });
      }
    }
  } catch (err) {
    if (pipeError === undefined && !aborted()) {
      flush?.stop();
      sink.destroy();
      stop();
      await Promise.allSettled([proc.done, hereDone]);
      opts.signal?.removeEventListener('abort', abort);
      throw new PgbkError('CATALOG', `cannot read ${what}: ${(err as Error).message}`, { server, path: what, cause: err });
    }
  }
  sink.end();
  const [status, h] = await Promise.all([proc.done, hereDone]);
  opts.signal?.removeEventListener('abort', abort);
  // Not flush.finish(): the members still queued when tar exits are flushed by the restore's final
  // flushRestored (finalize-pgdata.ts), which fsyncs every file anyway; waiting here for them
  // first opened and fdatasync'ed them twice (0.2 s of a pgbench -s 50 restore; Session 13).
  flush?.stop();
  // Everything it started has exited (done/close above): only now is the abort reported.
  if (aborted()) throw new RestoreAborted(`while unpacking ${what}`, server, what);
  const childFailed = host.local && decompress !== undefined && status.code !== 0 && CHILD_FAILED.test(stderr);
  if ((h !== undefined && h.code !== 0 && !killedHere) || childFailed) {
    const name = decompress?.[0] ?? 'decompressor';
    const why = h !== undefined ? h.stderr || `exit ${String(h.code)}` : stderr.trim();
    throw new PgbkError('CATALOG', `${name} could not decompress ${what}: ${why}`, {
      server,
      path: what,
      hint: 'the stored backup file is damaged',
    });
  }
  if (status.code === null && !host.local) {
    throw new PgbkError('NETWORK', `unpacking ${what} into ${where(host, dir)} failed: ${stderr.trim() || 'connection lost'}`, { server });
  }
  if (status.code !== 0) {
    throw new PgbkError(
      'CATALOG',
      `tar could not extract ${what}${host.local ? '' : ` into ${where(host, dir)}`}: ${stderr.trim() || `exit ${String(status.code ?? status.signal)}`}`,
      {
        server,
        path: what,
      },
    );
  }
  if (pipeError !== undefined) throw new PgbkError('CATALOG', `extracting ${what} stopped early: ${pipeError.message}`, { server, path: what });
  const sha256 = hash.hex();
  if (opts.expectedSha256 !== undefined && sha256 !== opts.expectedSha256) throw digestMismatch(what, server, opts.expectedSha256, sha256);
  opts.onProgress?.(storedBytes, files);
  return { storedBytes, files, sha256 };
}
