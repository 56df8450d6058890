/**
 * The database-host side of one `pgbk wal-serve` channel: requests go out as lines, answers come
 * back in the same order (several may be in flight: the channel stays busy while earlier answers
 * are checked). Every file is checked here, after the network: the stored bytes against the
 * sha256 SHA256SUMS recorded, then decompressed, then (segments) the long page header against the
 * name, the cluster's system identifier and segment size — what PostgreSQL would otherwise
 * discover only mid-replay, or not at all.
 */

import { decompressBuffer } from '../catalog/compress.js';
import { sha256Hex } from '../lib/checksum.js';
import { validateSegment } from '../pg/wal-header.js';
import type { ExecProcess } from '../transport/transport.js';
import { ByteReader } from '../wal-push/byte-reader.js';
import type { ServeHello, ServeReply } from './serve.js';
import { settleWithin } from '../lib/timer.js';

export type Fetched =
  | { readonly kind: 'found'; readonly data: Buffer; readonly streamingPartial?: true }
  | { readonly kind: 'absent' }
  | { readonly kind: 'fatal'; readonly error: string };

const SEGMENT_RE = /^[0-9A-F]{24}$/;

interface Waiting {
  readonly name: string;
  readonly resolve: (f: Fetched) => void;
}

/** Check what wal-serve sent for `name`: pure, so the refusals are unit-tested. */
export async function checkServed(
  name: string,
  reply: ServeReply,
  body: Buffer,
  hello: Required<Pick<ServeHello, 'systemIdentifier' | 'walSegmentSize'>>,
): Promise<Fetched> {
  if (reply.found !== true) return reply.found === false ? { kind: 'absent' } : { kind: 'fatal', error: reply.error };
  if (sha256Hex(body) !== reply.sha256) {
    return {
      kind: 'fatal',
      error: `archived WAL file ${name} is corrupt: the bytes received do not match the sha256 ${reply.recorded ? 'SHA256SUMS records' : 'the backup host computed'}`,
    };
  }
  let data: Buffer;
  try {
    data = await decompressBuffer(body, reply.compression);
  } catch (err) {
    return { kind: 'fatal', error: `archived WAL file ${name} is corrupt: ${(err as Error).message}` };
  }
  if (SEGMENT_RE.test(name)) {
    const v = validateSegment(name, data, { systemIdentifier: hello.systemIdentifier, segSize: hello.walSegmentSize });
    if (!v.ok) return { kind: 'fatal', error: `archived WAL file ${name} is not usable: ${v.reason}` };
  }
  return reply.streamingPartial === true ? { kind: 'found', data, streamingPartial: true } : { kind: 'found', data };
}

export class RemoteArchive {
  private readonly fifo: Waiting[] = [];
  private readonly inflight = new Map<string, Promise<Fetched>>();
  private deadReason: string | undefined;

  private constructor(
    private readonly serve: ExecProcess,
    private readonly reader: ByteReader,
    readonly hello: Required<Pick<ServeHello, 'systemIdentifier' | 'walSegmentSize'>>,
    onDead: (why: string) => void,
  ) {
    void this.readLoop(onDead);
  }

  /** Wait for wal-serve's hello; a fatal hello or a lost channel rejects with the reason. */
  static async open(serve: ExecProcess, onDead: (why: string) => void): Promise<RemoteArchive> {
    let err = '';
    serve.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
    const reader = new ByteReader(serve.stdout);
    const line = await reader.line();
    let hello: ServeHello | undefined;
    try {
      hello = line === undefined ? undefined : (JSON.parse(line) as ServeHello);
    } catch {
      hello = undefined;
    }
    if (hello?.fatal !== undefined) throw new Error(hello.fatal);
    if (hello?.hello !== 1 || typeof hello.systemIdentifier !== 'string' || typeof hello.walSegmentSize !== 'number') {
      const status = await settleWithin(serve.done, 2000);
      const how =
        status === undefined ? '' : ` (${(status as { code: number | null }).code === null ? 'connection lost' : `exit ${(status as { code: number }).code}`})`;
      throw new Error(`pgbk wal-serve did not start on the backup host${how}: ${(err.trim() || line) ?? 'no output'}`);
    }
    return new RemoteArchive(serve, reader, { systemIdentifier: hello.systemIdentifier, walSegmentSize: hello.walSegmentSize }, onDead);
  }

  get dead(): string | undefined {
    return this.deadReason;
  }

  private async readLoop(onDead: (why: string) => void): Promise<void> {
    for (;;) {
      const line = await this.reader.line();
      if (line === undefined) break;
      let reply: ServeReply;
      try {
        reply = JSON.parse(line) as ServeReply;
      } catch {
        break; // out of step with the stream: nothing after this can be trusted
      }
      let body: Buffer = Buffer.alloc(0);
      if (reply.found === true) {
        const b = await this.reader.exact(reply.size);
        if (b === undefined) break;
        body = b;
      }
      const w = this.fifo.shift();
      if (w === undefined) break;
      w.resolve(
        w.name === reply.name ? await checkServed(w.name, reply, body, this.hello) : { kind: 'fatal', error: `wal-serve answered ${reply.name} for ${w.name}` },
      );
    }
    const status = await settleWithin(this.serve.done, 2000);
    this.deadReason = `wal-serve on the backup host ended (${status === undefined || status.code === null ? 'connection lost' : `exit ${status.code}`})`;
    for (const w of this.fifo.splice(0)) w.resolve({ kind: 'fatal', error: this.deadReason });
    onDead(this.deadReason);
  }

  /** Fetch one file; concurrent requests for the same name share one transfer. */
  fetch(name: string): Promise<Fetched> {
    const known = this.inflight.get(name);
    if (known !== undefined) return known;
    const p = new Promise<Fetched>((resolve) => {
      if (this.deadReason !== undefined) {
        resolve({ kind: 'fatal', error: this.deadReason });
        return;
      }
      this.fifo.push({ name, resolve });
      this.serve.stdin.write(`${JSON.stringify({ name })}\n`);
    }).finally(() => this.inflight.delete(name));
    this.inflight.set(name, p);
    return p;
  }

  close(): void {
    this.serve.stdin.end();
  }
}
