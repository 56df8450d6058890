/**
 * zstd without a C compiler at install time (issue 10, item 1; figures in bench/zstd.ts):
 *
 * - compression: @toondepauw/node-zstd, a Rust (napi-rs) binding whose compiled binary comes
 *   inside a per-platform npm package (no install script). As fast as the zstd-napi it replaced.
 *   Its frames carry neither the content size nor the content checksum: completeFrame adds both,
 *   so every stored frame is what `zstd -1 --check` writes (readable by any zstd, `zstd -t` checks
 *   it, and decompression detects damaged content).
 * - decompression: @bokuweb/zstd-wasm (zstd's C code built to WebAssembly, same on every platform),
 *   which verifies the content checksum; about half the speed of native code but 3× the speed of
 *   the native package's decoder. Frames without a content size (written by other tools) go
 *   through the native decoder.
 * - where no binary exists for the platform, the WebAssembly build compresses too.
 *
 * All are loaded on first use: commands that never (de)compress should not pay for it.
 */

import { createRequire } from 'node:module';
import { PgbkError } from '../errors.js';

interface NativeZstd {
  Encoder: new (level: number) => { encodeSync(data: Buffer): Buffer };
  Decoder: new () => { decodeSync(data: Buffer): Buffer };
}
interface WasmZstd {
  init(): Promise<void>;
  compress(data: Uint8Array, level?: number): Uint8Array;
  decompress(data: Uint8Array): Uint8Array;
}

export interface ZstdCodec {
  /** One frame with content size and content checksum. */
  compress(data: Buffer, level: number): Buffer;
  /** The content of a frame; throws on damage (content checksum, corrupt blocks). */
  decompress(frame: Buffer): Buffer;
}

const require = createRequire(import.meta.url);
let loading: Promise<ZstdCodec> | undefined;

/** The codec, loaded once per process. */
export function zstdCodec(): Promise<ZstdCodec> {
  loading ??= load();
  return loading;
}

function loadNative(): NativeZstd | undefined {
  try {
    return require('@toondepauw/node-zstd') as NativeZstd;
  } catch {
    return undefined; // no prebuilt binary for this platform: WebAssembly does it all
  }
}

async function load(): Promise<ZstdCodec> {
  const wasm = require('@bokuweb/zstd-wasm') as WasmZstd;
  const [xxhash] = await Promise.all([import('xxhash-wasm').then((m) => m.default()), wasm.init()]);
  const native = loadNative();
  const encoders = new Map<number, { encodeSync(data: Buffer): Buffer }>();
  const decoder = native === undefined ? undefined : new native.Decoder();
  const checksum = (data: Buffer): number => Number(xxhash.h64Raw(data) & 0xffffffffn);
  return {
    compress(data, level) {
      if (native === undefined) return completeFrame(Buffer.from(wasmCall(() => wasm.compress(data, level))), data.length, checksum(data));
      let enc = encoders.get(level);
      if (enc === undefined) {
        enc = new native.Encoder(level);
        encoders.set(level, enc);
      }
      return completeFrame(enc.encodeSync(data), data.length, checksum(data));
    },
    decompress(frame) {
      if (frameContentSize(frame) === undefined && decoder !== undefined) return decoder.decodeSync(frame);
      const out = wasmCall(() => wasm.decompress(frame));
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    },
  };
}

/** zstd's error codes (zstd_errors.h) that mean something to an operator. */
const ZSTD_ERRORS: Readonly<Record<number, string>> = {
  10: 'not a zstd frame (unknown prefix)',
  20: 'corrupt data',
  22: 'content checksum mismatch',
  70: 'content larger than the frame header says',
  72: 'truncated or trailing data',
};

/** The WebAssembly build reports "…with code -N": name the error instead. */
function wasmCall(fn: () => Uint8Array): Uint8Array {
  try {
    return fn();
  } catch (err) {
    const m = /code (-?\d+)/.exec((err as Error).message);
    const code = m?.[1] === undefined ? undefined : Math.abs(Number(m[1]));
    const what = code === undefined ? (err as Error).message : (ZSTD_ERRORS[code] ?? `zstd error ${code}`);
    throw new PgbkError('INTERNAL', `zstd: ${what}`, { cause: err });
  }
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
  const h = frameHeader(frame);
  if (h === undefined) throw new PgbkError('INTERNAL', 'zstd: the encoder did not write a zstd frame');
  const addFcs = h.fcsBytes === 0;
  if (!addFcs && h.hasChecksum) return frame;
  const fcsBytes = addFcs ? (contentLength < 2 ** 32 ? 4 : 8) : 0;
  const out = Buffer.allocUnsafe(frame.length + fcsBytes + (h.hasChecksum ? 0 : 4));
  frame.copy(out, 0, 0, h.fcsOffset);
  let at = h.fcsOffset;
  if (fcsBytes === 4) at = out.writeUInt32LE(contentLength, at);
  else if (fcsBytes === 8) at = out.writeBigUInt64LE(BigInt(contentLength), at);
  at += frame.copy(out, at, h.fcsOffset);
  out[4] = h.fhd | (fcsBytes === 4 ? 0x80 : fcsBytes === 8 ? 0xc0 : 0) | 0x04;
  if (!h.hasChecksum) out.writeUInt32LE(xxh64Low32 >>> 0, at);
  return out;
}
