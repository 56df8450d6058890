/**
 * Unpack one stored tar (base.tar.zst, <oid>.tar.gz, …) into a directory in a single pass: the
 * stored bytes are read once, hashed (sha256, compared with backup.json) and piped into the
 * decompressor and `tar -x`.
 *
 * Why external programs rather than zstd-napi + the `tar` npm package: throughput. `zstd -d` and
 * GNU `tar` each get their own process (and CPU) and are the reference the issue measures against;
 * Node's main thread only reads and hashes. `tar` is GNU tar, called with an argument array: it
 * refuses absolute and `..` member names by default, so an archive cannot write outside DIR.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';

export interface ExtractOptions {
  readonly file: string;
  readonly compression: Compression;
  readonly expectedSha256: string;
  readonly destDir: string;
  /** Called as stored bytes are read and as tar reports files. */
  readonly onProgress?: (storedBytes: number, files: number) => void;
  readonly server?: string;
  /** Aborting kills the decompressor and tar (Ctrl-C during a restore). */
  readonly signal?: AbortSignal;
  /** The stored bytes when they are not the local `file` (object storage, restore/stored-source.ts); `file` then names them. */
  readonly source?: AsyncIterable<Buffer>;
}

export interface ExtractResult {
  readonly storedBytes: number;
  readonly files: number;
}

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

function finished(child: ChildProcess, name: string): Promise<Finished> {
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new PgbkError('INTERNAL', `cannot run ${name}: ${err.message}`, { cause: err })));
    child.once('close', (code, signal) => resolve({ code, signal, stderr: stderr.trim() }));
  });
}

function decompressorFor(compression: Compression): readonly string[] | undefined {
  switch (compression) {
    case 'zstd':
      return ['zstd', '-d', '-c', '-q'];
    case 'gzip':
      return ['gzip', '-d', '-c'];
    case 'none':
      return undefined;
    default: {
      const never: never = compression;
      throw new PgbkError('INTERNAL', `unknown compression ${String(never)}`);
    }
  }
}

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

export async function extractStoredTar(opts: ExtractOptions): Promise<ExtractResult> {
  const { file, server } = opts;
  const dec = decompressorFor(opts.compression);
  const decompressor =
    dec === undefined
      ? undefined
      : spawn(dec[0]!, dec.slice(1), {
          stdio: ['pipe', 'pipe', 'pipe'],
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        });
  // -v lists each member on stdout: the file count for progress. Ownership: as root GNU tar keeps
  // the owner recorded in the archive (the source server's files), as anyone else the caller owns.
  // -b 2048 -B: read 1 MiB records and keep reading until each is full. From a pipe, tar's default
  // 10 KiB records cost a read(2) per 10 KiB; -B makes the short reads a pipe gives harmless.
  const tar = spawn('tar', ['-x', '-v', '-b', '2048', '-B', '-f', '-', '-C', opts.destDir], {
    stdio: [decompressor === undefined ? 'pipe' : decompressor.stdout!, 'pipe', 'pipe'],
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  // tar has its own copy of the pipe's read end now; ours must not compete for the data.
  decompressor?.stdout?.destroy();
  const sink = decompressor === undefined ? tar.stdin! : decompressor.stdin!;
  const tarDone = finished(tar, 'tar');
  const decDone = decompressor === undefined ? undefined : finished(decompressor, dec![0]!);
  let files = 0;
  let storedBytes = 0;
  tar.stdout!.on('data', (d: Buffer) => {
    for (const byte of d) if (byte === 10) files++;
    opts.onProgress?.(storedBytes, files);
  });
  let pipeError: Error | undefined;
  sink.on('error', (err) => {
    pipeError ??= err; // EPIPE when the consumer died: its exit status tells why
  });

  const hash = createHash('sha256');
  try {
    for await (const chunk of opts.source ?? createReadStream(file, { highWaterMark: 1 << 20 })) {
      const buf = chunk as Buffer;
      hash.update(buf);
      storedBytes += buf.length;
      opts.onProgress?.(storedBytes, files);
      if (pipeError !== undefined || opts.signal?.aborted === true) break;
      await write(sink, buf);
    }
  } catch (err) {
    if (pipeError === undefined) {
      sink.destroy();
      decompressor?.kill();
      tar.kill();
      await Promise.allSettled([tarDone, decDone]);
      throw new PgbkError('CATALOG', `cannot read ${file}: ${(err as Error).message}`, { server, path: file, cause: err });
    }
  }
  sink.end();
  const [t, d] = await Promise.all([tarDone, decDone]);
  if (opts.signal?.aborted === true) throw new PgbkError('INTERNAL', `extraction of ${file} interrupted`, { server, path: file });
  if (d !== undefined && d.code !== 0) {
    throw new PgbkError('CATALOG', `${dec![0]} could not decompress ${file}: ${d.stderr || `exit ${d.code ?? d.signal}`}`, {
      server,
      path: file,
      hint: 'the stored backup file is damaged',
    });
  }
  if (t.code !== 0) {
    throw new PgbkError('CATALOG', `tar could not extract ${file}: ${t.stderr || `exit ${t.code ?? t.signal}`}`, { server, path: file });
  }
  if (pipeError !== undefined) {
    throw new PgbkError('CATALOG', `extracting ${file} stopped early: ${pipeError.message}`, { server, path: file });
  }
  const actual = hash.digest('hex');
  if (actual !== opts.expectedSha256) {
    throw new PgbkError('CATALOG', `${file} does not match its recorded sha256 (recorded ${opts.expectedSha256}, read ${actual})`, {
      server,
      path: file,
      hint: 'the stored backup is damaged; restore from another backup',
    });
  }
  opts.onProgress?.(storedBytes, files);
  return { storedBytes, files };
}
