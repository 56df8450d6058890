/**
 * The SSH sink of the push (pusher.ts): one `pgbk wal-receive` on the backup host, fed frames in
 * order (a few in flight), each answered in order once the file is durable in the archive there.
 */

import { compressParts, ZSTD_LEVEL } from '../catalog/compress.js';
import { frameBound } from '../catalog/zstd-frame.js';
import { bytesLength } from '../lib/atomic.js';
import type { Compression } from '../config/resolved.js';
import { classifyIncoming } from '../pg/wal-name.js';
import { SshTransport } from '../transport/ssh.js';
import type { ExecProcess } from '../transport/transport.js';
import { ByteReader } from './byte-reader.js';
import type { OpenedSink, PushResult, PushSink } from './pusher.js';
import type { ReceiveReply } from './receive.js';
import type { PushOptions } from './target.js';
import { settleWithin } from '../lib/timer.js';

const MAX_IN_FLIGHT = 4;

interface Waiting {
  readonly name: string;
  readonly resolve: (r: ReceiveReply) => void;
}

export class SshSink implements PushSink {
  readonly maxInFlight = MAX_IN_FLIGHT;
  private readonly fifo: Waiting[] = [];
  dead: string | undefined;

  constructor(
    private readonly receiver: ExecProcess,
    private readonly compression: Compression,
    onDead: (why: string) => void,
  ) {
    const reader = new ByteReader(receiver.stdout);
    let err = '';
    receiver.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
    void (async () => {
      for (;;) {
        const line = await reader.line();
        if (line === undefined) break;
        let reply: ReceiveReply;
        try {
          reply = JSON.parse(line) as ReceiveReply;
        } catch {
          continue;
        }
        const w = this.fifo.shift();
        // Replies come in frame order; one for another file would ack the wrong segment.
        if (w !== undefined)
          w.resolve(reply.name === w.name ? reply : { name: w.name, ok: false, error: `wal-receive answered for ${String(reply.name)} instead` });
      }
      const status = await receiver.done;
      this.dead = `wal-receive on the backup host ended (${status.code === null ? 'connection lost' : `exit ${status.code}`}): ${err.trim()}`;
      for (const w of this.fifo.splice(0)) w.resolve({ name: w.name, ok: false, error: this.dead });
      onDead(this.dead);
    })();
  }

  async send(name: string, _file: string, data: Buffer): Promise<PushResult> {
    // Compressed here when the archive stores zstd: the receiver stores our frame as is, and
    // 3-10× fewer bytes through ssh2, sshd and the pipes cost less CPU than the compression
    // (on a host where every CPU-second is taken from PostgreSQL).
    const kind = classifyIncoming(name);
    const zstd = this.compression === 'zstd' && (kind === 'segment' || kind === 'partial');
    const { payload, release } = zstd ? await this.frameOf(data) : { payload: [data], release: undefined };
    if (this.dead !== undefined) {
      release?.();
      return { name, ok: false, error: this.dead };
    }
    const reply = new Promise<ReceiveReply>((resolve) => this.fifo.push({ name, resolve }));
    // The frame's memory is reused only once wal-receive has answered for it: it has then read every
    // byte, so nothing on the way (the transport's PassThrough, ssh2's channel waiting for window)
    // still refers to it. A write callback comes too early: the PassThrough hands its chunks on by
    // reference. The reply always comes, an error one when the connection ends.
    if (release !== undefined) void reply.then(release);
    this.receiver.stdin.write(`${JSON.stringify({ name, size: bytesLength(payload), ...(zstd ? { encoding: 'zstd' } : {}) })}\n`);
    let flowing = true;
    for (const part of payload) flowing = this.receiver.stdin.write(part);
    if (!flowing) await new Promise((r) => this.receiver.stdin.once('drain', r));
    return reply;
  }

  /** Output buffers of answered frames, for the next ones (at most MAX_IN_FLIGHT kept). */
  private readonly spare: Buffer[] = [];

  /**
   * The segment's zstd frame: written by zstd-napi's encoder into a buffer reused from frame to frame
   * (given back once wal-receive has answered for it), or where zstd-napi is missing the Rust encoder's
   * pieces, written one after another (not copied into one buffer: zstd.ts). A fresh frame per
   * segment was paged in as it was written: the encoder took ~1.8× as long (bench/RESULTS, session 24).
   */
  private async frameOf(data: Buffer): Promise<{ payload: readonly Buffer[]; release: (() => void) | undefined }> {
    const bound = frameBound(data.length);
    const i = this.spare.findIndex((b) => b.length >= bound);
    const out = i >= 0 ? this.spare.splice(i, 1)[0]! : Buffer.allocUnsafe(bound);
    // Loaded on the first frame, as compress.ts loads the encoders: the worker starts without them.
    const { compressInto } = await import('../catalog/zstd.js');
    const n = compressInto(data, ZSTD_LEVEL, out);
    const release = (): void => {
      if (this.spare.length < MAX_IN_FLIGHT) this.spare.push(out);
    };
    if (n !== undefined) return { payload: [out.subarray(0, n)], release };
    release();
    return { payload: await compressParts(data, 'zstd'), release: undefined };
  }
}

/**
 * Connect to the backup host (host key verified) and start `pgbk wal-receive` there. `onDead`: the
 * connection or wal-receive ended; the worker then fails what is pending and exits.
 */
export async function openSshSink(opts: PushOptions, onDead: (why: string) => void): Promise<OpenedSink> {
  const transport = await SshTransport.connect({
    host: opts.target.host,
    port: opts.target.port,
    user: opts.target.user,
    ...(opts.identityFile === undefined ? {} : { identityFile: opts.identityFile }),
    ...(opts.knownHosts === undefined ? {} : { knownHosts: opts.knownHosts }),
    server: opts.server,
  });
  const remote = [
    ...opts.remotePgbk.split(' ').filter((s) => s !== ''),
    'wal-receive',
    '--catalog',
    opts.target.catalog,
    '--compression',
    opts.compression,
    opts.server,
  ];
  const receiver = transport.exec(remote);
  return {
    sink: new SshSink(receiver, opts.compression, onDead),
    description: `connected to ${transport.description}`,
    close: async () => {
      receiver.stdin.end();
      await settleWithin(receiver.done, 5000);
      await transport.close();
    },
  };
}
