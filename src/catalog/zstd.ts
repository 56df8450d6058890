/**
 * zstd without a C compiler at install time (issue 10, item 1; figures in bench/zstd.ts):
 *
 * - compression: @toondepauw/node-zstd, a Rust (napi-rs) binding whose compiled binary comes
 *   inside a per-platform npm package (no install script). Its frames carry neither the content
 *   size nor the content checksum: completeFrame adds both, the checksum computed by
 *   @node-rs/xxhash (prebuilt the same way; 2× the speed of XXH64 in WebAssembly, whose input
 *   must first be copied into the module's memory), so every stored frame is what
 *   `zstd -1 --check` writes (readable by any zstd, `zstd -t` checks it, and decompression detects
 *   damaged content). wal-push stores the frame as pieces (compressParts: a new header, the
 *   encoder's blocks as they are, the checksum) with writev: copying the blocks into one buffer
 *   cost ~0.15× of the compression itself (bench/zstd.ts, "frame copied into one buffer").
 * - decompression: zstd's own decoder built to WebAssembly with SIMD (zstd-wasm.gen.ts, made by
 *   scripts/zstd-wasm/build.sh), which verifies the content checksum. The native package's
 *   decoder streams into a growing vector and is 4-5× slower than zstd-napi on WAL (bench/zstd.ts);
 *   this one writes into a Buffer sized from the frame header, each byte copied out once.
 * - where no binary exists for the platform, @bokuweb/zstd-wasm compresses and the WebAssembly
 *   decoder hashes.
 * - frames that declare their size are decoded by zstd's C decoder when the optional package
 *   zstd-napi is installed (zstd-native.ts): ~1.5× the WebAssembly decoder's speed on a restore's
 *   chunks; WAL segments in 1 MiB pieces through one reused buffer, ~1.4× its speed into a file.
 *   zstd-napi builds at install time (a prebuilt binary, or compiled); without it, nothing
 *   changes but the speed.
 *
 * All are loaded on first use: commands that never (de)compress should not pay for it.
 */

import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PgbkError } from '../errors.js';
import { bytesToBuffer } from '../lib/atomic.js';
import { completeFrameParts, type FrameParts, frameContentSize } from './zstd-frame.js';
import { NATIVE_DECODE_MAX, NATIVE_FRESH_MAX, NativeDecoder, NativeEncoder } from './zstd-native.js';
import { ZSTD_DECODER_WASM_BASE64 } from './zstd-wasm.gen.js';

interface NativeZstd {
  Encoder: new (level: number) => { encodeSync(data: Buffer): Buffer };
}
interface NativeXxhash {
  xxh64(data: Uint8Array): bigint;
}
interface WasmZstd {
  init(): Promise<void>;
  compress(data: Uint8Array, level?: number): Uint8Array;
}

export interface ZstdCodec {
  /** One frame with content size and content checksum. */
  compress(data: Buffer, level: number): Buffer;
  /** compress() as pieces, the encoder's output not copied (wal-push writes them with writev). */
  compressParts(data: Buffer, level: number): FrameParts;
  /** The content of a frame; throws on damage (content checksum, corrupt blocks). */
  decompress(frame: Buffer): Buffer;
  /**
   * Decode a frame straight into `fd` at `position` (synchronous writes from the decoder's own
   * memory: no Buffer of the whole content is made); `tap` sees each run of content before it is
   * written (e.g. to hash it). Throws on damage, and when `expectedLength` is given and the content
   * is not that long (before writing anything when the header says so). Returns the bytes written.
   */
  decompressToFd(frame: Buffer, fd: number, position: number, opts?: DecompressToFdOptions): number;
}

export interface DecompressToFdOptions {
  readonly expectedLength?: number;
  readonly tap?: (run: Uint8Array) => void;
}

/** The decoding half of ZstdCodec: what a restore needs, without loading the compressors. */
export interface ZstdDecoder extends Pick<ZstdCodec, 'decompress' | 'decompressToFd'> {
  /** Load the decoders now (a thread that decodes later does it while it waits). */
  warm(): void;
}

export { completeFrame, completeFrameParts, type FrameParts, frameContentSize } from './zstd-frame.js';

const require = createRequire(import.meta.url);
let loading: Promise<ZstdCodec> | undefined;
let decoder: WasmDecoder | undefined;
let nativeDecoder: NativeDecoder | null | undefined;

/** The codec, loaded once per process. */
export function zstdCodec(): Promise<ZstdCodec> {
  loading ??= load();
  return loading;
}

/** The decoders only (a restore's threads: the compressors' native modules cost ~50 ms to load). */
export function zstdDecoder(): ZstdDecoder {
  return DECODER;
}

const wasmDecoder = (): WasmDecoder => (decoder ??= WasmDecoder.create());

const loadNative = (): NativeDecoder | null => (nativeDecoder ??= NativeDecoder.load() ?? null);

const DECODER: ZstdDecoder = {
  warm: () => {
    wasmDecoder();
    loadNative();
  },
  decompress: (frame) => wasmDecoder().decompress(frame),
  decompressToFd: (frame, fd, position, opts = {}) => {
    const native = loadNative();
    const declared = nativeSize(frame);
    if (native === null || declared === undefined) return wasmDecoder().decompressToFd(frame, fd, position, opts);
    if (opts.expectedLength !== undefined && declared !== opts.expectedLength) throw sizeMismatch(declared, opts.expectedLength);
    const put = (out: Buffer, at: number): void => {
      opts.tap?.(out);
      for (let done = 0; done < out.length; ) done += writeSync(fd, out, done, out.length - done, position + at + done);
    };
    if (declared <= NATIVE_DECODE_MAX) {
      put(native.decode(frame, declared), 0);
      return declared;
    }
    // Larger (a WAL segment): in pieces through one reused buffer, each written as it is decoded.
    pieceBuffer ??= Buffer.allocUnsafe(PIECE_BYTES);
    const n = native.decodePieces(frame, pieceBuffer, put);
    if (n !== declared) throw sizeMismatch(n, declared);
    return n;
  },
};

/**
 * The content size `frame` declares when zstd-napi's decoder takes it (installed here; 1 byte to
 * NATIVE_FRESH_MAX), else undefined: the WebAssembly decoder's (empty or size-less frames).
 */
function nativeSize(frame: Buffer): number | undefined {
  if (loadNative() === null) return undefined;
  const declared = frameContentSize(frame);
  return declared !== undefined && declared > 0 && declared <= NATIVE_FRESH_MAX ? declared : undefined;
}

/** The piece a large frame is decoded through by decompressToFd (zstd's own streaming output size is 128 KiB). */
const PIECE_BYTES = 1 << 20;
let pieceBuffer: Buffer | undefined;

/**
 * The content of one frame in a Buffer of its own, like decompress(), by zstd-napi's C decoder when
 * it is installed and the header declares the size (archived WAL segments, read whole: ~3× the
 * WebAssembly decoder's speed on 16 MiB, and nothing copied out of WebAssembly memory), else by the
 * WebAssembly decoder. Both check the blocks, the declared size and the content checksum.
 * Loads no compressor (zstdCodec() loads two native modules a reader does not need). With `into`,
 * the native decoder writes there and the content is a view of it (valid until `into` is reused);
 * the WebAssembly decoder always returns a Buffer of its own.
 */
export function decompressWhole(frame: Buffer, into?: Buffer): Buffer {
  const native = loadNative();
  const declared = nativeSize(frame);
  if (native === null || declared === undefined) return wasmDecoder().decompress(frame);
  // Into the caller's buffer when it is large enough (see NativeDecoder.decodeInto for why).
  return into !== undefined && declared <= into.length ? native.decodeInto(frame, declared, into) : native.decodeFresh(frame, declared);
}

/**
 * The content of one frame in pieces through `out` (NativeDecoder.decodePieces: every piece but the
 * last is out.length bytes, the content is vouched for only once this returns), for a reader that
 * needs no whole copy (the restore's WAL scan). Without zstd-napi, or for a frame that declares no
 * size, the WebAssembly decoder decodes it whole and it comes as one piece.
 */
export function decompressPieces(frame: Buffer, out: Buffer, onPiece: (piece: Buffer, offset: number) => void): number {
  const native = loadNative();
  const declared = nativeSize(frame);
  if (native === null || declared === undefined) {
    const whole = wasmDecoder().decompress(frame);
    if (whole.length > 0) onPiece(whole, 0);
    return whole.length;
  }
  const n = native.decodePieces(frame, out, onPiece);
  if (n !== declared) throw sizeMismatch(n, declared);
  return n;
}

let nativeEncoder: NativeEncoder | null | undefined;

/**
 * The frame of `data` at `level` (content size and checksum, as compress() writes) straight into
 * `out`, by zstd-napi's C encoder (NativeEncoder: no memory of its own per frame); its length, or
 * undefined when zstd-napi is not installed here (the caller then uses compressParts). `out` must
 * hold zstd's bound for data.length (zstd-frame.ts frameBound). Loads no Rust encoder.
 */
export function compressInto(data: Uint8Array, level: number, out: Uint8Array): number | undefined {
  return hasNativeEncoder() ? nativeEncoder?.compressInto(data, level, out) : undefined;
}

/** Whether compressInto works here (loads zstd-napi's encoder on the first call). */
export function hasNativeEncoder(): boolean {
  nativeEncoder ??= NativeEncoder.load() ?? null;
  return nativeEncoder !== null;
}

/** Which decoder decompressToFd, decompressWhole and decompressPieces use for `frame` here; for tests. */
export function zstdDecoderFor(frame: Buffer): 'native' | 'wasm' {
  return nativeSize(frame) !== undefined ? 'native' : 'wasm';
}

/** Bytes of WebAssembly memory the decoder holds (0 before its first use); for tests. */
export function zstdDecoderMemoryBytes(): number {
  return decoder?.memoryBytes() ?? 0;
}

/** A package whose prebuilt binary may be missing for this platform. */
function optional<T>(name: string): T | undefined {
  try {
    return require(name) as T;
  } catch {
    return undefined;
  }
}

async function load(): Promise<ZstdCodec> {
  // The decoder is compiled on first use: wal-push only compresses, in a process of its own.
  const native = optional<NativeZstd>('@toondepauw/node-zstd');
  const xxhash = optional<NativeXxhash>('@node-rs/xxhash');
  const checksum = (data: Buffer): number => Number((xxhash === undefined ? wasmDecoder().xxh64(data) : xxhash.xxh64(data)) & 0xffffffffn);
  let compress: (data: Buffer, level: number) => Buffer;
  if (native !== undefined) {
    const encoders = new Map<number, { encodeSync(data: Buffer): Buffer }>();
    compress = (data, level) => {
      let enc = encoders.get(level);
      if (enc === undefined) {
        enc = new native.Encoder(level);
        encoders.set(level, enc);
      }
      return enc.encodeSync(data);
    };
  } else {
    const wasm = require('@bokuweb/zstd-wasm') as WasmZstd;
    await wasm.init();
    compress = (data, level) => Buffer.from(wasmCall(() => wasm.compress(data, level)));
  }
  const compressParts = (data: Buffer, level: number): FrameParts => completeFrameParts(compress(data, level), data.length, checksum(data));
  return {
    compress: (data, level) => bytesToBuffer(compressParts(data, level)),
    compressParts,
    decompress: DECODER.decompress,
    decompressToFd: DECODER.decompressToFd,
  };
}

interface DecoderExports {
  readonly __heap_base: WebAssembly.Global;
  dctx_size(): number;
  dctx_init(workspace: number, size: number): number;
  content_size(src: number, size: number): number;
  decompress(dctx: number, dst: number, capacity: number, src: number, size: number): number;
  xxh64(src: number, size: number): bigint;
  stream_begin(dctx: number, src: number, size: number): number;
  stream_run(dctx: number, dst: number, capacity: number): number;
  stream_left(dctx: number): number;
}

const PAGE = 65536;
const align = (n: number): number => Math.ceil(n / 64) * 64;

/**
 * zstd's decoder in WebAssembly. Its memory holds [stack, tables][context][frame][ring or content];
 * it grows to the largest frame decoded and stays so, because growing again for every segment would
 * cost more than the memory. A frame larger than its window goes through a ring (stream()), so a
 * WAL segment needs its frame and ~0.8 MiB; a frame without a content size is decoded whole.
 */
class WasmDecoder {
  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly fn: DecoderExports,
    private readonly dctx: number,
    /** Where the frame goes. */
    private readonly src: number,
  ) {}

  /** Compiled synchronously (~80 kB, a few ms): Node.js allows it, and decompress() is synchronous. */
  static create(): WasmDecoder {
    const module = new WebAssembly.Module(Buffer.from(ZSTD_DECODER_WASM_BASE64, 'base64'));
    const memory = new WebAssembly.Memory({ initial: 16 });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const fn = instance.exports as unknown as DecoderExports;
    const base = align(fn.__heap_base.value as number);
    const size = fn.dctx_size();
    reserve(memory, base + size);
    const dctx = fn.dctx_init(base, size);
    if (dctx === 0) throw new PgbkError('INTERNAL', 'zstd: the WebAssembly decoder did not set up its context');
    return new WasmDecoder(memory, fn, dctx, align(base + size));
  }

  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  private load(data: Uint8Array): void {
    reserve(this.memory, this.src + data.length);
    new Uint8Array(this.memory.buffer).set(data, this.src);
  }

  xxh64(data: Uint8Array): bigint {
    this.load(data);
    return BigInt.asUintN(64, this.fn.xxh64(this.src, data.length));
  }

  decompress(frame: Buffer): Buffer {
    this.load(frame);
    const declared = this.fn.content_size(this.src, frame.length);
    if (declared === -2) throw zstdError(10);
    const dst = align(this.src + frame.length);
    const ring = declared > 0 ? this.fn.stream_begin(this.dctx, this.src, frame.length) : 0;
    if (ring < 0) throw zstdError(-ring);
    if (ring > 0) return this.stream(declared, dst, ring);
    // Frames written from a pipe (`zstd < file`) declare no size: try a bigger buffer until it fits.
    for (let capacity = declared >= 0 ? declared : Math.max(frame.length * 16, 1 << 20); ; capacity *= 2) {
      reserve(this.memory, dst + capacity);
      const n = this.fn.decompress(this.dctx, dst, capacity, this.src, frame.length);
      if (n >= 0) {
        const out = Buffer.allocUnsafe(n);
        out.set(new Uint8Array(this.memory.buffer, dst, n));
        return out;
      }
      if (declared >= 0 || -n !== DST_TOO_SMALL) throw zstdError(-n);
    }
  }

  /**
   * Decode `frame` into `fd`: each run of the ring (or the whole content of a small frame) is
   * written from a view over this memory, so the content is copied once, into the page cache.
   * Measured against zstd-napi + writing its Buffer (bench/zstd.ts, end-to-end rows).
   */
  decompressToFd(frame: Buffer, fd: number, position: number, opts: DecompressToFdOptions): number {
    const { expectedLength, tap } = opts;
    this.load(frame);
    const declared = this.fn.content_size(this.src, frame.length);
    if (declared === -2) throw zstdError(10);
    if (expectedLength !== undefined && declared >= 0 && declared !== expectedLength) throw sizeMismatch(declared, expectedLength);
    const dst = align(this.src + frame.length);
    const ring = declared > 0 ? this.fn.stream_begin(this.dctx, this.src, frame.length) : 0;
    if (ring < 0) throw zstdError(-ring);
    const put = (at: number, n: number, written: number): void => {
      const view = new Uint8Array(this.memory.buffer, at, n);
      tap?.(view);
      for (let done = 0; done < n; ) done += writeSync(fd, view, done, n - done, position + written + done);
    };
    if (ring === 0 && declared > 0) {
      // A frame within its window (a 1 MiB chunk of an `ssh` backup): decoded whole into this
      // memory and written from there, not copied into a Buffer of its own first (a fresh 1 MiB
      // per chunk, page faults and GC included, was ~5 % of a restoring thread's time).
      reserve(this.memory, dst + declared);
      const n = this.fn.decompress(this.dctx, dst, declared, this.src, frame.length);
      if (n < 0) throw zstdError(-n);
      if (n !== declared) throw zstdError(20);
      put(dst, n, 0);
      return n;
    }
    if (ring === 0) {
      // Empty or size-less frames: decoded whole here, then written in one go.
      const out = this.decompress(frame);
      if (expectedLength !== undefined && out.length !== expectedLength) throw sizeMismatch(out.length, expectedLength);
      tap?.(out);
      for (let done = 0; done < out.length; ) done += writeSync(fd, out, done, out.length - done, position + done);
      return out.length;
    }
    reserve(this.memory, dst + ring);
    let at = 0;
    for (;;) {
      const n = this.fn.stream_run(this.dctx, dst, ring);
      if (n < 0) throw zstdError(-n);
      if (at + n > declared) throw zstdError(70);
      put(dst, n, at);
      at += n;
      if (this.fn.stream_left(this.dctx) === 0) break;
      if (n === 0) throw zstdError(20);
    }
    if (at !== declared) throw zstdError(20);
    return at;
  }

  /**
   * One frame larger than its window (a WAL segment: 16 MiB, window 512 KiB at level 1) decoded
   * through a ring of window + 2 blocks (~0.8 MiB), each run copied out to the result: this memory
   * then holds the frame and the ring instead of the frame and the whole content. Measured on WAL
   * it runs at the speed of decoding whole (copying into a new Buffer costs the same from either).
   */
  private stream(declared: number, ring: number, ringSize: number): Buffer {
    reserve(this.memory, ring + ringSize);
    const out = Buffer.allocUnsafe(declared);
    let at = 0;
    // Each run fills the ring from its start until a whole block no longer fits (where zstd's own
    // streaming decoder wraps too); the next run refers back into the last window of this one.
    for (;;) {
      const n = this.fn.stream_run(this.dctx, ring, ringSize);
      if (n < 0) throw zstdError(-n);
      if (at + n > declared) throw zstdError(70);
      out.set(new Uint8Array(this.memory.buffer, ring, n), at);
      at += n;
      if (this.fn.stream_left(this.dctx) === 0) break;
      if (n === 0) throw zstdError(20);
    }
    if (at !== declared) throw zstdError(20);
    return out;
  }
}

/** Grow `memory` to hold `end` bytes. */
function reserve(memory: WebAssembly.Memory, end: number): void {
  const have = memory.buffer.byteLength;
  if (end <= have) return;
  try {
    memory.grow(Math.ceil((end - have) / PAGE));
  } catch (err) {
    throw new PgbkError('INTERNAL', `zstd: cannot allocate ${end} bytes of WebAssembly memory to decompress`, { cause: err });
  }
}

const DST_TOO_SMALL = 70;

function sizeMismatch(got: number, want: number): PgbkError {
  return new PgbkError('INTERNAL', `zstd: the frame holds ${got} bytes, ${want} expected`);
}

function zstdError(code: number, cause?: unknown): PgbkError {
  return new PgbkError('INTERNAL', `zstd: ${ZSTD_ERRORS[code] ?? `zstd error ${code}`}`, cause === undefined ? {} : { cause });
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
    if (code !== undefined) throw zstdError(code, err);
    throw new PgbkError('INTERNAL', `zstd: ${(err as Error).message}`, { cause: err });
  }
}
