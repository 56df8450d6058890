/**
 * zstd's own C decoder, through the optional package zstd-napi, for frames of a few MiB (the
 * 1 MiB chunks of an `ssh` backup): decoded into one Buffer reused from frame to frame, about
 * 1.5× the speed of the WebAssembly decoder in zstd.ts on a restore's chunks (bench/RESULTS,
 * session 18). zstd-napi builds at install time (a prebuilt binary, or compiled from the zstd it
 * bundles); where it is missing or fails to load, zstd.ts decodes everything itself, with the same
 * checks. Larger frames (WAL segments) are decoded in pieces through a reused buffer
 * (decodePieces), so their whole content is never held either.
 */

import { createRequire } from 'node:module';
import { PgbkError } from '../errors.js';

/** Largest content decoded here (the reused output buffer grows to it): twice an `ssh` chunk. */
export const NATIVE_DECODE_MAX = 2 << 20;

/**
 * Largest content decodeFresh takes (PostgreSQL's largest WAL segment): a header declaring more is
 * left to the WebAssembly decoder, whose answer (its memory cannot grow that far) names the problem.
 */
export const NATIVE_FRESH_MAX = 1 << 30;

interface NapiDctx {
  decompress(dst: Uint8Array, src: Uint8Array): number;
  /** ZSTD_decompressStream: [bytes left to flush (0 once the frame is complete), produced, consumed]. */
  decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number];
  reset(directive: number): void;
}

/** ZSTD_reset_session_only: abandon any frame in progress. */
const RESET_SESSION_ONLY = 1;
/** ZSTD_c_compressionLevel, ZSTD_c_checksumFlag (ZSTD_c_contentSizeFlag is on by default). */
const C_COMPRESSION_LEVEL = 100;
const C_CHECKSUM_FLAG = 201;

function loadBinding(): NapiBinding | undefined {
  try {
    return createRequire(import.meta.url)('zstd-napi/binding.js') as NapiBinding;
  } catch {
    return undefined;
  }
}

/**
 * zstd's own C encoder through zstd-napi, writing a whole frame into the caller's buffer: the frame
 * `zstd -N --check` writes (content size and content checksum in it, so completeFrame has nothing
 * to add). For wal-push's compression threads, whose output buffers are reused from segment to
 * segment: the Rust encoder (zstd.ts) returns each frame in memory of its own, which is paged in
 * as it is written — on WAL it took ~1.8× the time of this (61.6 vs 33.7 ms for a pgbench segment
 * of 5 MB compressed, bench/RESULTS session 24).
 */
export class NativeEncoder {
  #level: number | undefined;

  private constructor(private readonly cctx: NapiCctx) {}

  /** The encoder, or undefined when zstd-napi is not installed or cannot load here. */
  static load(): NativeEncoder | undefined {
    const binding = loadBinding();
    if (binding === undefined) return undefined;
    try {
      const cctx = new binding.CCtx();
      cctx.setParameter(C_CHECKSUM_FLAG, 1);
      return new NativeEncoder(cctx);
    } catch {
      return undefined;
    }
  }

  /** The frame of `data` at `level` written from out[0]; its length. Throws when `out` is too small. */
  compressInto(data: Uint8Array, level: number, out: Uint8Array): number {
    if (this.#level !== level) {
      this.cctx.setParameter(C_COMPRESSION_LEVEL, level);
      this.#level = level;
    }
    try {
      return this.cctx.compress2(out, data);
    } catch (err) {
      throw new PgbkError('INTERNAL', `zstd: ${(err as Error).message}`, { cause: err });
    }
  }
}
interface NapiCctx {
  setParameter(param: number, value: number): void;
  /** ZSTD_compress2: one frame with the parameters set, into dst; its length. */
  compress2(dst: Uint8Array, src: Uint8Array): number;
}
interface NapiBinding {
  CCtx: new () => NapiCctx;
  DCtx: new () => NapiDctx;
}

export class NativeDecoder {
  #out = Buffer.allocUnsafe(0);

  private constructor(private readonly dctx: NapiDctx) {}

  /** The decoder, or undefined when zstd-napi is not installed or cannot load here. */
  static load(): NativeDecoder | undefined {
    const binding = loadBinding();
    if (binding === undefined) return undefined;
    try {
      return new NativeDecoder(new binding.DCtx());
    } catch {
      return undefined;
    }
  }

  /**
   * The content of `frame`, whose header declares `declared` bytes (≤ NATIVE_DECODE_MAX), as a
   * view of this decoder's buffer, valid until the next call. zstd checks the blocks, the declared
   * size and the content checksum when the frame has one; throws on damage.
   */
  decode(frame: Uint8Array, declared: number): Buffer {
    if (this.#out.length < declared) this.#out = Buffer.allocUnsafe(Math.max(declared, 1 << 20));
    let n: number;
    try {
      n = this.dctx.decompress(this.#out.subarray(0, declared), frame);
    } catch (err) {
      throw new PgbkError('INTERNAL', `zstd: ${(err as Error).message}`, { cause: err });
    }
    if (n !== declared) throw new PgbkError('INTERNAL', `zstd: the frame holds ${n} bytes, its header says ${declared}`);
    return this.#out.subarray(0, n);
  }

  /**
   * The content of `frame` (header: `declared` bytes, ≤ NATIVE_FRESH_MAX) in a Buffer of its own,
   * decoded in place (a WAL segment read whole: the scan for new tablespaces keeps one while the
   * next is read). Same checks as decode().
   */
  decodeFresh(frame: Uint8Array, declared: number): Buffer {
    return this.decodeInto(frame, declared, Buffer.allocUnsafe(declared));
  }

  /**
   * The content of `frame` decoded in pieces through the caller's `out`, reused for each: `onPiece`
   * gets a view of it each time it is full, and the rest at the end, with the piece's offset in the
   * content; every piece but the last is out.length bytes. No memory as large as the content is
   * touched (see decodeInto for why that matters), and the pieces stay in the CPU's cache. zstd
   * checks the content checksum once the frame ends: the pieces are not vouched for until this
   * returns, and a damaged frame throws after some were handed out. Returns the content's length.
   */
  decodePieces(frame: Uint8Array, out: Buffer, onPiece: (piece: Buffer, offset: number) => void): number {
    this.dctx.reset(RESET_SESSION_ONLY);
    let src = frame;
    let filled = 0;
    let total = 0;
    for (;;) {
      let left: number;
      let produced: number;
      let consumed: number;
      try {
        [left, produced, consumed] = this.dctx.decompressStream(out.subarray(filled), src);
      } catch (err) {
        // A stream always has room here (each full piece is handed out first): zstd says so when a
        // damaged block decodes past the size the header declares.
        const m = (err as Error).message;
        throw new PgbkError('INTERNAL', `zstd: ${/destination buffer is too small/i.test(m) ? 'content larger than the frame header says' : m}`, {
          cause: err,
        });
      }
      filled += produced;
      src = src.subarray(consumed);
      if (filled === out.length || (left === 0 && filled > 0)) {
        onPiece(out.subarray(0, filled), total);
        total += filled;
        filled = 0;
      }
      if (left === 0) break;
      // Input all read and no progress: the frame is cut short.
      if (src.length === 0 && produced === 0) throw new PgbkError('INTERNAL', 'zstd: the frame ends early (truncated)');
    }
    if (src.length !== 0) throw new PgbkError('INTERNAL', `zstd: ${src.length} bytes follow the frame`);
    return total;
  }

  /**
   * The content of `frame` (header: `declared` bytes, at most out.length) decoded into the caller's
   * `out`, as a view of it. Same checks as decode(). For readers of many segments one after another
   * (the restore's WAL scan, verify): memory a process has just been given is paged in as it is
   * first written, and a fresh 16 MiB Buffer per segment cost ~55-70 ms of page faults on this
   * machine kind against ~5 ms to decode into one already used (bench/RESULTS, session 24).
   */
  decodeInto(frame: Uint8Array, declared: number, out: Buffer): Buffer {
    if (declared > out.length) throw new PgbkError('INTERNAL', `zstd: a frame of ${declared} bytes does not fit a ${out.length}-byte buffer`);
    let n: number;
    try {
      n = this.dctx.decompress(out.subarray(0, declared), frame);
    } catch (err) {
      throw new PgbkError('INTERNAL', `zstd: ${(err as Error).message}`, { cause: err });
    }
    if (n !== declared) throw new PgbkError('INTERNAL', `zstd: the frame holds ${n} bytes, its header says ${declared}`);
    return out.length === n ? out : out.subarray(0, n);
  }
}
