/**
 * The worker's pushing half: one wal-receive on the backup host, fed frames in order (a few in
 * flight), each answered in order; every file PostgreSQL has marked `.ready` is pushed ahead, and
 * once the backup host reports one durable, its acknowledgement marker is written for the
 * archive_command's shell fast path (fast-path.ts).
 */

import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { compressBuffer } from '../catalog/compress.js';
import type { Compression } from '../config/resolved.js';
import { classifyIncoming } from '../pg/wal-name.js';
import type { ExecProcess } from '../transport/transport.js';
import { ByteReader } from './byte-reader.js';
import { dropMarkers, fileStamp, listMarkers, writeMarker } from './fast-path.js';
import type { ReceiveReply } from './receive.js';

const MAX_IN_FLIGHT = 4;

interface Waiting {
  readonly name: string;
  readonly resolve: (r: ReceiveReply) => void;
}

export class Pusher {
  private readonly results = new Map<string, Promise<ReceiveReply>>();
  private readonly fifo: Waiting[] = [];
  private inFlight = 0;
  private slotWaiters: (() => void)[] = [];
  private dead: string | undefined;
  /** Pushed and acknowledged; forgotten once PostgreSQL is done with the file (bounded memory). */
  private readonly succeeded = new Set<string>();
  private scanning = false;
  private rescan = false;
  /** When a scan last found work: with the fast path, clients are rare, so this is activity too. */
  lastSawReady = 0;

  constructor(
    private readonly receiver: ExecProcess,
    private readonly pgdata: string,
    private readonly markers: string,
    private readonly compression: Compression,
    private readonly log: (s: string) => void,
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

  private async slot(): Promise<void> {
    while (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
  }

  /** Push one file (deduplicated: a file already pushed or in flight shares that outcome). */
  push(name: string, file: string): Promise<ReceiveReply> {
    const known = this.results.get(name);
    if (known !== undefined) return known;
    const p = this.send(name, file);
    this.results.set(name, p);
    // Only successes are remembered: a refused or failed push is tried afresh when asked again.
    void p.then((r) => {
      if (!r.ok) this.results.delete(name);
      else this.succeeded.add(name);
    });
    return p;
  }

  private async send(name: string, file: string): Promise<ReceiveReply> {
    await this.slot();
    try {
      if (this.dead !== undefined) return { name, ok: false, error: this.dead };
      let data: Buffer;
      let stamp: string;
      try {
        // The stamp is of the file as opened, before reading: a file changed since no longer
        // matches the marker, so the shell fast path cannot vouch for content we did not send.
        const fh = await open(file, 'r');
        try {
          stamp = fileStamp(await fh.stat({ bigint: true }));
          data = await fh.readFile();
        } finally {
          await fh.close();
        }
      } catch (err) {
        return { name, ok: false, error: `cannot read ${file}: ${(err as Error).message}` };
      }
      // Compressed here when the archive stores zstd: the receiver stores our frame as is, and
      // 3-10× fewer bytes through ssh2, sshd and the pipes cost less CPU than the compression
      // (on a host where every CPU-second is taken from PostgreSQL).
      const kind = classifyIncoming(name);
      const zstd = this.compression === 'zstd' && (kind === 'segment' || kind === 'partial');
      const payload = zstd ? await compressBuffer(data, 'zstd') : data;
      const reply = new Promise<ReceiveReply>((resolve) => this.fifo.push({ name, resolve }));
      this.receiver.stdin.write(`${JSON.stringify({ name, size: payload.length, ...(zstd ? { encoding: 'zstd' } : {}) })}\n`);
      if (!this.receiver.stdin.write(payload)) await new Promise((r) => this.receiver.stdin.once('drain', r));
      const r = await reply;
      if (!r.ok) this.log(`push of ${name} refused: ${r.error ?? '?'}`);
      // Only now, durable on the backup host: the marker the archive_command's fast path reads.
      else await writeMarker(this.markers, name, stamp).catch((err: Error) => this.log(`cannot write the marker of ${name}: ${err.message}`));
      return r;
    } finally {
      this.release();
    }
  }

  /** Push ahead whatever PostgreSQL has marked ready, oldest first; drop markers it is done with. */
  async scan(): Promise<void> {
    if (this.dead !== undefined) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescan = false;
        await this.scanOnce();
      } while (this.rescan && this.dead === undefined);
    } finally {
      this.scanning = false;
    }
  }

  private async scanOnce(): Promise<void> {
    const marked = await listMarkers(this.markers); // before the listing: see dropMarkers
    let names: string[];
    try {
      names = await readdir(path.join(this.pgdata, 'pg_wal', 'archive_status'));
    } catch {
      return;
    }
    const ready = names
      .filter((n) => n.endsWith('.ready'))
      .map((n) => n.slice(0, -'.ready'.length))
      .sort();
    if (ready.length > 0) this.lastSawReady = Date.now();
    for (const name of ready) {
      if (this.results.has(name)) continue;
      void this.push(name, path.join(this.pgdata, 'pg_wal', name));
    }
    const readySet = new Set(ready);
    for (const name of this.succeeded) {
      // At worst (acknowledged after the listing) a later request pushes it again: a duplicate, ok.
      if (!readySet.has(name)) {
        this.succeeded.delete(name);
        this.results.delete(name);
      }
    }
    await dropMarkers(this.markers, marked, readySet);
  }
}
