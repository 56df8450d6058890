/**
 * zstd frame headers (RFC 8878 §3.1.1), read and completed without decoding: the content size a
 * frame declares, and the fields `zstd` itself writes added to a frame of an encoder that leaves
 * them out (zstd.ts).
 */

import { PgbkError } from '../errors.js';
import { bytesToBuffer } from '../lib/atomic.js';

/**
 * One zstd frame as pieces that are stored one after another (FrameParts.length is the count of
 * pieces; bytes: lib/atomic.ts bytesLength). Writers take them as they are (writev, a hash updated
 * per piece).
 */
export type FrameParts = readonly Buffer[];

/**
 * Room for any zstd frame of `n` bytes of content: zstd's ZSTD_COMPRESSBOUND plus the few bytes
 * completeFrame may add to the encoder's header and end (content size, checksum). Buffers that
 * frames are written into (zstd.ts compressInto) or stored frames are read into are this large.
 */
export function frameBound(n: number): number {
  const small = n < 128 * 1024 ? (128 * 1024 - n) >> 11 : 0;
  return n + (n >> 8) + small + 64;
}

const MAGIC = 0xfd2fb528;
const FCS_BYTES = [0, 2, 4, 8] as const;

interface FrameHeader {
  readonly fhd: number;
  /** Offset of the Frame_Content_Size field (where one is inserted when absent). */
  readonly fcsOffset: number;
  readonly fcsBytes: number;
  readonly hasChecksum: boolean;
}

function frameHeader(frame: Buffer): FrameHeader | undefined {
  if (frame.length < 6 || frame.readUInt32LE(0) !== MAGIC) return undefined;
  const fhd = frame[4]!;
  const single = (fhd & 0x20) !== 0;
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsFlag = fhd >> 6;
  return {
    fhd,
    fcsOffset: 5 + (single ? 0 : 1) + dictBytes,
    fcsBytes: fcsFlag === 0 && single ? 1 : FCS_BYTES[fcsFlag as 0 | 1 | 2 | 3],
    hasChecksum: (fhd & 0x04) !== 0,
  };
}

/** The content size a frame's header declares, or undefined when it has none. */
export function frameContentSize(frame: Buffer): number | undefined {
  const h = frameHeader(frame);
  if (h === undefined || h.fcsBytes === 0 || frame.length < h.fcsOffset + h.fcsBytes) return undefined;
  switch (h.fcsBytes) {
    case 1:
      return frame[h.fcsOffset]!;
    case 2:
      return frame.readUInt16LE(h.fcsOffset) + 256;
    case 4:
      return frame.readUInt32LE(h.fcsOffset);
    default:
      return Number(frame.readBigUInt64LE(h.fcsOffset));
  }
}

/**
 * Give a single zstd frame the fields `zstd` itself writes: the content size (Frame_Content_Size,
 * 4 or 8 bytes, inserted after the window descriptor) when absent, and the content checksum (the
 * low 32 bits of XXH64 of the content, seed 0, appended; RFC 8878 §3.1.1) when absent. The blocks
 * are untouched.
 */
export function completeFrame(frame: Buffer, contentLength: number, xxh64Low32: number): Buffer {
  return bytesToBuffer(completeFrameParts(frame, contentLength, xxh64Low32));
}

/**
 * completeFrame as the pieces to write one after another (writev): a new header of a few bytes,
 * the encoder's blocks as a view (not copied), the 4-byte checksum. Copying the ~1 MiB of blocks
 * into a new buffer cost about as much as the checksum itself (fresh pages on every segment).
 */
export function completeFrameParts(frame: Buffer, contentLength: number, xxh64Low32: number): FrameParts {
  const h = frameHeader(frame);
  if (h === undefined) throw new PgbkError('INTERNAL', 'zstd: the encoder did not write a zstd frame');
  const addFcs = h.fcsBytes === 0;
  if (!addFcs && h.hasChecksum) return [frame];
  const fcsBytes = addFcs ? (contentLength < 2 ** 32 ? 4 : 8) : 0;
  const head = Buffer.alloc(h.fcsOffset + fcsBytes);
  frame.copy(head, 0, 0, h.fcsOffset);
  if (fcsBytes === 4) head.writeUInt32LE(contentLength, h.fcsOffset);
  else if (fcsBytes === 8) head.writeBigUInt64LE(BigInt(contentLength), h.fcsOffset);
  head[4] = h.fhd | (fcsBytes === 4 ? 0x80 : fcsBytes === 8 ? 0xc0 : 0) | 0x04;
  const body = frame.subarray(h.fcsOffset);
  if (h.hasChecksum) return [head, body];
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(xxh64Low32 >>> 0);
  return [head, body, tail];
}
