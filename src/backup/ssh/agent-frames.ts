/**
 * The wire format between `pgbk backup-agent` (database host, stdout) and the backup host.
 * A frame is a type byte, a uint32 big-endian payload length, then the payload:
 *
 *   H  hello      JSON {"agent":"pgbk","version":1}        first frame: the agent really runs
 *   C  chunk      32-byte sha256 + the chunk's bytes       chunk differs from the previous backup's
 *   K  compressed 32-byte sha256 + uint32 BE length +     the same, compressed on the database host
 *                 one zstd frame of the chunk's bytes     (sha256 and length of the uncompressed bytes)
 *   S  same       (empty)                                  chunk's sha256 equals the previous one
 *   E  file end   JSON {"size":N} or {"missing":true}      one per requested file, in request order
 *   X  error      UTF-8 message                            the agent gives up (then exits 1)
 *   Z  done       JSON {"files":N,"bytesRead":N}           last frame: the stream is complete
 *
 * A stream that stops anywhere before Z — an SSH connection dropped mid-chunk, an agent killed —
 * is torn, and the decoder says so (finish() throws): nothing incomplete is ever taken as a file.
 * Pure; imports nothing, so the agent starts fast.
 */

/** 2: compressed chunks (K), parallel hashing/compression, page-LSN skipping. */
export const AGENT_PROTOCOL_VERSION = 2;
export const HASH_BYTES = 32;
/** Larger than any chunk the agent is asked for (64 MiB) or its zstd frame: anything longer is a corrupt stream. */
export const MAX_FRAME = 65 * 1024 * 1024;

export type Frame =
  | { readonly type: 'hello'; readonly version: number }
  | { readonly type: 'chunk'; readonly hash: Buffer; readonly data: Buffer }
  | { readonly type: 'compressed'; readonly hash: Buffer; readonly length: number; readonly frame: Buffer }
  | { readonly type: 'same' }
  | { readonly type: 'end'; readonly size: number; readonly missing: boolean }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'done'; readonly files: number; readonly bytesRead: number; readonly lsnSkipped?: number; readonly walSkipped?: number };

/** What the backup host sends on the agent's stdin (one JSON document). */
export interface AgentRequest {
  readonly version: number;
  readonly chunkSize: number;
  /** zstd level for K frames; absent: chunks go as C frames, uncompressed. */
  readonly zstdLevel?: number;
  /** Threads hashing and compressing chunks (default 2). */
  readonly workers?: number;
  /**
   * Start LSN ("X/Y") of the previous backup, on this backup's timeline, and the server's page
   * size: a chunk of a file marked `lsnPages` whose pages all carry a non-zero LSN before it is
   * sent as "same" unhashed (its previous copy was taken after its last change).
   */
  readonly previousStartLsn?: string;
  readonly pageSize?: number;
  /** Timings of the agent's phases on its stderr, as "[profile] agent …" lines (PGBK_SSH_PROFILE on the backup host). */
  readonly profile?: boolean;
  /**
   * Absolute paths on the database host; hashes: the previous backup's chunk sha256s (hex) and
   * previousSize its size; lsnPages: a relation main fork (pages stamped with their LSN);
   * unchanged: chunk index ranges [from, to) that the WAL since the previous backup's start does
   * not touch (backup/ssh/wal-changes.ts): sent as "same" without being read. An agent that does
   * not know the field reads them: slower, never wrong.
   */
  readonly files: readonly {
    readonly path: string;
    readonly hashes?: readonly string[];
    readonly previousSize?: number;
    readonly lsnPages?: boolean;
    readonly unchanged?: readonly (readonly [number, number])[];
  }[];
}

function header(type: string, length: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h.write(type, 0, 1, 'latin1');
  h.writeUInt32BE(length, 1);
  return h;
}

/** The buffers of one frame (header, then payload parts: written without concatenating chunk data). */
export function encodeFrame(f: Frame): Buffer[] {
  switch (f.type) {
    case 'hello': {
      const p = Buffer.from(JSON.stringify({ agent: 'pgbk', version: f.version }));
      return [header('H', p.length), p];
    }
    case 'chunk':
      return [header('C', HASH_BYTES + f.data.length), f.hash, f.data];
    case 'compressed': {
      const h = Buffer.allocUnsafe(HASH_BYTES + 4);
      f.hash.copy(h, 0, 0, HASH_BYTES);
      h.writeUInt32BE(f.length, HASH_BYTES);
      return [header('K', h.length + f.frame.length), h, f.frame];
    }
    case 'same':
      return [header('S', 0)];
    case 'end': {
      const p = Buffer.from(JSON.stringify(f.missing ? { missing: true } : { size: f.size }));
      return [header('E', p.length), p];
    }
    case 'error': {
      const p = Buffer.from(f.message, 'utf8');
      return [header('X', p.length), p];
    }
    case 'done': {
      const p = Buffer.from(
        JSON.stringify({
          files: f.files,
          bytesRead: f.bytesRead,
          ...(f.lsnSkipped === undefined ? {} : { lsnSkipped: f.lsnSkipped }),
          ...(f.walSkipped === undefined ? {} : { walSkipped: f.walSkipped }),
        }),
      );
      return [header('Z', p.length), p];
    }
    default: {
      const never: never = f;
      throw new Error(`unknown frame ${JSON.stringify(never)}`);
    }
  }
}

export class FrameError extends Error {}

function parseJson(payload: Buffer, type: string): Record<string, unknown> {
  try {
    const o = JSON.parse(payload.toString('utf8')) as unknown;
    if (typeof o === 'object' && o !== null) return o as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new FrameError(`agent stream corrupt: bad ${type} frame`);
}

function decodePayload(type: string, p: Buffer): Frame {
  switch (type) {
    case 'H': {
      const o = parseJson(p, 'hello');
      if (o['agent'] !== 'pgbk' || typeof o['version'] !== 'number') throw new FrameError('agent stream corrupt: bad hello');
      return { type: 'hello', version: o['version'] };
    }
    case 'C':
      if (p.length < HASH_BYTES) throw new FrameError('agent stream corrupt: chunk frame shorter than its hash');
      return { type: 'chunk', hash: p.subarray(0, HASH_BYTES), data: p.subarray(HASH_BYTES) };
    case 'K':
      if (p.length < HASH_BYTES + 4) throw new FrameError('agent stream corrupt: compressed frame shorter than its hash and length');
      return { type: 'compressed', hash: p.subarray(0, HASH_BYTES), length: p.readUInt32BE(HASH_BYTES), frame: p.subarray(HASH_BYTES + 4) };
    case 'S':
      if (p.length !== 0) throw new FrameError('agent stream corrupt: same frame with a payload');
      return { type: 'same' };
    case 'E': {
      const o = parseJson(p, 'end');
      if (o['missing'] === true) return { type: 'end', size: 0, missing: true };
      if (typeof o['size'] !== 'number') throw new FrameError('agent stream corrupt: end frame without size');
      return { type: 'end', size: o['size'], missing: false };
    }
    case 'X':
      return { type: 'error', message: p.toString('utf8') };
    case 'Z': {
      const o = parseJson(p, 'done');
      if (typeof o['files'] !== 'number' || typeof o['bytesRead'] !== 'number') throw new FrameError('agent stream corrupt: bad done frame');
      const lsnSkipped = o['lsnSkipped'];
      const walSkipped = o['walSkipped'];
      return {
        type: 'done',
        files: o['files'],
        bytesRead: o['bytesRead'],
        ...(typeof lsnSkipped === 'number' ? { lsnSkipped } : {}),
        ...(typeof walSkipped === 'number' ? { walSkipped } : {}),
      };
    }
    default:
      throw new FrameError(`agent stream corrupt: unknown frame type 0x${Buffer.from(type, 'latin1').toString('hex')}`);
  }
}

/** Incremental decoder: push() what arrives, take the complete frames; finish() at end of stream. */
export class FrameDecoder {
  private parts: Buffer[] = [];
  private buffered = 0;
  private sawDone = false;
  /** Bytes received so far (for transfer figures). */
  received = 0;

  push(buf: Buffer): Frame[] {
    if (this.sawDone && buf.length > 0) throw new FrameError('agent stream corrupt: data after the done frame');
    this.received += buf.length;
    this.parts.push(buf);
    this.buffered += buf.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < 5) break;
      const head = this.peek(5);
      const type = String.fromCharCode(head[0]!);
      const length = head.readUInt32BE(1);
      if (length > MAX_FRAME) throw new FrameError(`agent stream corrupt: frame of ${length} bytes`);
      if (this.buffered < 5 + length) break;
      this.take(5);
      const frame = decodePayload(type, this.take(length));
      out.push(frame);
      if (frame.type === 'done') {
        this.sawDone = true;
        if (this.buffered > 0) throw new FrameError('agent stream corrupt: data after the done frame');
        break;
      }
    }
    return out;
  }

  /** Throws unless the stream ended exactly after the done frame. */
  finish(): void {
    if (!this.sawDone) {
      throw new FrameError(
        this.buffered > 0 ? `agent stream torn: it ends inside a frame (${this.buffered} bytes left over)` : 'agent stream torn: it ends before the done frame',
      );
    }
  }

  private peek(n: number): Buffer {
    const first = this.parts[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (const p of this.parts) {
      at += p.copy(out, at, 0, Math.min(p.length, n - at));
      if (at === n) break;
    }
    return out;
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.parts[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const p = this.parts[0]!;
      const k = Math.min(p.length, n - at);
      p.copy(out, at, 0, k);
      at += k;
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
    }
    return out;
  }
}
