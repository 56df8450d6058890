/**
 * Compression of stored files. zstd is the default: at level 1 it runs at several hundred MB/s on
 * WAL with about the ratio of higher levels (WAL is dominated by page images and zero padding), so
 * archiving keeps up with PostgreSQL. Frames carry zstd's content checksum, so `zstd -t` or any
 * reader detects a damaged file on its own. gzip exists for interoperability; none stores the bytes
 * as they are. The zstd code is loaded on first use (zstd.ts says which and why), hence async.
 */

import { writeSync } from 'node:fs';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import type { FrameParts, ZstdCodec, ZstdDecoder } from './zstd.js';

/**
 * Level 1. Measured here on a PostgreSQL 15 segment (fresh initdb WAL): level 1 ≈ 650 MB/s at ratio
 * 13.6, level 3 ≈ 530 MB/s at ratio 15.0; TOOLCHAIN.md's busier WAL gave ≈ 340 MB/s at level 1.
 * Archiving speed matters more than the last few percent of space.
 */
export const ZSTD_LEVEL = 1;
export const GZIP_LEVEL = 1;

export const COMPRESSIONS: readonly Compression[] = ['zstd', 'gzip', 'none'];

export function extensionFor(kind: Compression): '.zst' | '.gz' | '' {
  switch (kind) {
    case 'zstd':
      return '.zst';
    case 'gzip':
      return '.gz';
    case 'none':
      return '';
    default: {
      const never: never = kind;
      throw new PgbkError('INTERNAL', `unknown compression ${String(never)}`);
    }
  }
}

/** Compression a stored file name implies by its extension. */
export function compressionOfFile(fileName: string): Compression {
  if (fileName.endsWith('.zst')) return 'zstd';
  if (fileName.endsWith('.gz')) return 'gzip';
  return 'none';
}

/**
 * zstd.ts (and its 110 kB decoder) is imported on first use: `list`, `status` and the WAL index
 * only need the names above, and every module loaded counts in a read command's start.
 */
let codec: Promise<ZstdCodec> | undefined;
function zstdCodec(): Promise<ZstdCodec> {
  // One import for the process: wal-push compresses every segment through here.
  codec ??= import('./zstd.js').then((m) => m.zstdCodec());
  return codec;
}

/**
 * The decoding half only, for what reads: the codec's decompress and decompressToFd are these very
 * functions, but loading the codec also loads the two native compressor modules (~50 ms of a
 * process's start): wal-fetch's Node path and its prefetch worker decode every segment they serve
 * and never compress.
 */
let decoder: Promise<ZstdDecoder> | undefined;
function zstdDecoder(): Promise<ZstdDecoder> {
  decoder ??= import('./zstd.js').then((m) => m.zstdDecoder());
  return decoder;
}

// node:zlib is imported where gzip is used: the read commands load this module for its names and
// would otherwise pay ~4 ms of start-up for a codec they never run.
export async function compressBuffer(buf: Buffer, kind: Compression): Promise<Buffer> {
  switch (kind) {
    case 'zstd':
      return (await zstdCodec()).compress(buf, ZSTD_LEVEL);
    case 'gzip':
      return (await import('node:zlib')).gzipSync(buf, { level: GZIP_LEVEL });
    case 'none':
      return buf;
    default: {
      const never: never = kind;
      throw new PgbkError('INTERNAL', `unknown compression ${String(never)}`);
    }
  }
}

/**
 * compressBuffer as pieces to store one after another (writev): zstd's frame without copying the
 * encoder's output into one buffer (what wal-push stores; see ZstdCodec.compressParts).
 */
export async function compressParts(buf: Buffer, kind: Compression): Promise<FrameParts> {
  return kind === 'zstd' ? (await zstdCodec()).compressParts(buf, ZSTD_LEVEL) : [await compressBuffer(buf, kind)];
}

export async function decompressBuffer(buf: Buffer, kind: Compression): Promise<Buffer> {
  switch (kind) {
    case 'zstd':
      return (await zstdDecoder()).decompress(buf);
    case 'gzip':
      return (await import('node:zlib')).gunzipSync(buf);
    case 'none':
      return buf;
    default: {
      const never: never = kind;
      throw new PgbkError('INTERNAL', `unknown compression ${String(never)}`);
    }
  }
}

/**
 * Decompress `buf` straight into `fd` at `position` (synchronous writes; for worker threads and
 * one-shot commands). zstd writes from the decoder's memory without a Buffer of the whole content;
 * gzip and none write the one Buffer they have. `tap` sees the content as it is written.
 */
export async function decompressToFd(
  buf: Buffer,
  kind: Compression,
  fd: number,
  position: number,
  opts: { readonly expectedLength?: number; readonly tap?: (run: Uint8Array) => void } = {},
): Promise<number> {
  if (kind === 'zstd') return (await zstdDecoder()).decompressToFd(buf, fd, position, opts);
  const data = await decompressBuffer(buf, kind);
  if (opts.expectedLength !== undefined && data.length !== opts.expectedLength) {
    throw new PgbkError('INTERNAL', `${kind}: the content is ${data.length} bytes, ${opts.expectedLength} expected`);
  }
  opts.tap?.(data);
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
  return data.length;
}
