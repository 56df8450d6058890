/**
 * zstd's own C decoder, through the optional package zstd-napi, for frames of a few MiB (the
 * 1 MiB chunks of an `ssh` backup): decoded into one Buffer reused from frame to frame, about
 * 1.5× the speed of the WebAssembly decoder in zstd.ts on a restore's chunks (bench/RESULTS,
 * session 18). zstd-napi builds at install time (a prebuilt binary, or compiled from the zstd it
 * bundles); where it is missing or fails to load, zstd.ts decodes everything itself, with the same
 * checks. Larger frames (WAL segments) stay with the WebAssembly decoder, which streams them
 * through a ring instead of holding their whole content.
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
}
interface NapiBinding {
  DCtx: new () => NapiDctx;
}

export class NativeDecoder {
  #out = Buffer.allocUnsafe(0);

  private constructor(private readonly dctx: NapiDctx) {}

  /** The decoder, or undefined when zstd-napi is not installed or cannot load here. */
  static load(): NativeDecoder | undefined {
    try {
      const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as NapiBinding;
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
    const out = Buffer.allocUnsafe(declared);
    let n: number;
    try {
      n = this.dctx.decompress(out, frame);
    } catch (err) {
      throw new PgbkError('INTERNAL', `zstd: ${(err as Error).message}`, { cause: err });
    }
    if (n !== declared) throw new PgbkError('INTERNAL', `zstd: the frame holds ${n} bytes, its header says ${declared}`);
    return out;
  }
}
