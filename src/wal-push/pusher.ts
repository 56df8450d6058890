/**
 * The worker's pushing half, the same for every sink (DESIGN.md §6: one push, sinks local catalog /
 * remote catalog): every file PostgreSQL has marked `.ready` is read and handed to the sink, a few
 * at a time, oldest first; once the sink reports one durable in the archive, its acknowledgement
 * marker is written for the archive_command's shell fast path (fast-path.ts). A client asking for a
 * file already pushed, or in flight, shares that outcome.
 */

import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { dropMarkers, fileStamp, listMarkers, writeMarker } from './fast-path.js';

/** Files smaller than this (.history, .backup) are read into a fresh buffer each time. */
const REUSE_MIN = 1024 * 1024;

/**
 * pg_wal/archive_status is listed at most this often: every .ready event and every answered
 * client asks for a scan, dozens a second during a backlog, each a readdir of the directory and of
 * the markers for nothing new.
 */
export const MIN_SCAN_INTERVAL_MS = 100;

/** A sink's answer for one file: ok only once it is durable in the archive. */
export interface PushResult {
  readonly name: string;
  readonly ok: boolean;
  readonly result?: 'archived' | 'duplicate';
  readonly error?: string;
}

/** Where pushed files go: the local catalog (local-sink.ts) or one on another host (ssh-sink.ts). */
export interface PushSink {
  /** How many files may be in flight at once. */
  readonly maxInFlight: number;
  /** Why the sink can take nothing more (its connection ended), or undefined. */
  readonly dead: string | undefined;
  /**
   * Make `data` (read from `file`, WAL file `name`) durable in the archive, or say why not. `data`
   * may be a view of a reused buffer: the sink must not hold on to it once it answered.
   */
  send(name: string, file: string, data: Buffer): Promise<PushResult>;
  /**
   * A fresh read buffer of `size` bytes of the kind the sink works on best (the local sink's
   * compression threads read shared memory in place); a plain one when absent. Reused by the pusher.
   */
  readBuffer?(size: number): Buffer;
}

/** A sink that is open, with what to say about it and how to close it. */
export interface OpenedSink {
  readonly sink: PushSink;
  /** For the worker's log ("connected to …"). */
  readonly description: string;
  close(): Promise<void>;
}

/** A push's outcome with the stamp (fast-path.ts fileStamp) of the file as it was read. */
interface Pushed extends PushResult {
  readonly stamp?: string;
}

const answer = ({ stamp: _stamp, ...r }: Pushed): PushResult => r;

async function stampOf(file: string): Promise<string | undefined> {
  return stat(file, { bigint: true }).then(fileStamp, () => undefined);
}

export class Pusher {
  private readonly results = new Map<string, Promise<Pushed>>();
  private inFlight = 0;
  private slotWaiters: (() => void)[] = [];
  /** Pushed and acknowledged; forgotten once PostgreSQL is done with the file (bounded memory). */
  private readonly succeeded = new Set<string>();
  private scanning = false;
  private rescan = false;
  /** When the last scan started, and the timer of the one asked for too soon after it. */
  private lastScan = 0;
  private scanTimer: NodeJS.Timeout | undefined;
  private readonly scanWaiters: (() => void)[] = [];
  /** When a scan last found work: with the fast path, clients are rare, so this is activity too. */
  lastSawReady = 0;

  constructor(
    private readonly sink: PushSink,
    private readonly pgdata: string,
    private readonly markers: string,
    private readonly log: (s: string) => void,
  ) {}

  /**
   * Read buffers of a segment's size, reused: a fresh 16 MiB buffer per segment costs as much CPU
   * in page faults as compressing it. At most one per file in flight exists (bounded memory).
   */
  private readonly spares: Buffer[] = [];

  private spare(size: number): Buffer {
    const i = this.spares.findIndex((b) => b.length === size);
    if (i >= 0) return this.spares.splice(i, 1)[0]!;
    // Another size (a segment size changed?): the old ones would only take memory.
    this.spares.length = 0;
    return this.sink.readBuffer?.(size) ?? Buffer.allocUnsafeSlow(size);
  }

  private async slot(): Promise<void> {
    while (this.inFlight >= this.sink.maxInFlight) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
  }

  /**
   * Push one file and answer whether it is durable in the archive (what a client asks before it
   * acknowledges the file to PostgreSQL). A file already pushed, or in flight, shares that outcome
   * — but only if `file` is still the very file that was read (device, inode, size, mtime, as the
   * fast path's marker): one recycled or rewritten since it was pushed ahead is pushed again.
   */
  async push(name: string, file: string): Promise<PushResult> {
    for (let attempt = 1; ; attempt++) {
      const pending = this.start(name, file);
      const r = await pending;
      if (!r.ok) return answer(r);
      const now = await stampOf(file);
      if (now !== undefined && now === r.stamp) return answer(r);
      if (this.results.get(name) === pending) {
        this.results.delete(name);
        this.succeeded.delete(name);
      }
      if (now === undefined) return { name, ok: false, error: `cannot read ${file}: it is gone` };
      if (attempt >= 2) return { name, ok: false, error: `${file} changed while it was being archived` };
    }
  }

  /** Start pushing one file unless it is pushed or in flight already (deduplicated). */
  private start(name: string, file: string): Promise<Pushed> {
    const known = this.results.get(name);
    if (known !== undefined) return known;
    const p = this.send(name, file);
    this.results.set(name, p);
    // Only successes are remembered: a refused or failed push is tried afresh when asked again.
    void p.then((r) => {
      if (this.results.get(name) !== p) return;
      if (!r.ok) this.results.delete(name);
      else this.succeeded.add(name);
    });
    return p;
  }

  private async send(name: string, file: string): Promise<Pushed> {
    await this.slot();
    try {
      const dead = this.sink.dead;
      if (dead !== undefined) return { name, ok: false, error: dead };
      let data: Buffer;
      let stamp: string;
      let mtimeNs: bigint;
      let whole: Buffer | undefined;
      try {
        // The stamp is of the file as opened, before reading: a file changed since no longer
        // matches the marker, so the shell fast path cannot vouch for content we did not send.
        const fh = await open(file, 'r');
        try {
          const st = await fh.stat({ bigint: true });
          stamp = fileStamp(st);
          mtimeNs = st.mtimeNs;
          const size = Number(st.size);
          if (size < REUSE_MIN) data = await fh.readFile();
          else {
            whole = this.spare(size);
            let filled = 0;
            while (filled < size) {
              const { bytesRead } = await fh.read(whole, filled, size - filled, filled);
              if (bytesRead === 0) break;
              filled += bytesRead;
            }
            data = whole.subarray(0, filled);
          }
        } finally {
          await fh.close();
        }
      } catch (err) {
        if (whole !== undefined) this.spares.push(whole);
        return { name, ok: false, error: `cannot read ${file}: ${(err as Error).message}` };
      }
      let r: Pushed;
      try {
        r = await this.sink.send(name, file, data);
      } catch (err) {
        r = { name, ok: false, error: err instanceof Error ? err.message : String(err) };
      } finally {
        // The sink is done with the bytes once it answered (durable, refused, or its end is gone).
        if (whole !== undefined && this.spares.length < this.sink.maxInFlight) this.spares.push(whole);
      }
      if (!r.ok) this.log(`push of ${name} refused: ${r.error ?? '?'}`);
      // Only now, durable in the archive: the marker the archive_command's fast path reads.
      else await writeMarker(this.markers, name, stamp, mtimeNs).catch((err: Error) => this.log(`cannot write the marker of ${name}: ${err.message}`));
      return r.ok ? { ...r, stamp } : r;
    } finally {
      this.release();
    }
  }

  /**
   * Push ahead whatever PostgreSQL has marked ready, oldest first; drop markers it is done with.
   * Scans start at most every MIN_SCAN_INTERVAL_MS: one asked for sooner (or while one runs)
   * happens once that interval has passed. Resolves when a scan that started after the call is done.
   */
  scan(): Promise<void> {
    if (this.sink.dead !== undefined) return Promise.resolve();
    const done = new Promise<void>((r) => this.scanWaiters.push(r));
    if (this.scanning) this.rescan = true;
    else this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.scanTimer !== undefined) return;
    const wait = this.lastScan + MIN_SCAN_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      void this.runScan();
      return;
    }
    this.scanTimer = setTimeout(() => {
      this.scanTimer = undefined;
      void this.runScan();
    }, wait);
  }

  private async runScan(): Promise<void> {
    this.scanning = true;
    this.rescan = false;
    this.lastScan = Date.now();
    const waiting = this.scanWaiters.splice(0);
    try {
      if (this.sink.dead === undefined) await this.scanOnce();
    } catch (err) {
      this.log(`scan of pg_wal failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.scanning = false;
      for (const w of waiting) w();
      if (this.rescan || this.scanWaiters.length > 0) this.schedule();
    }
  }

  /** Stop the timer of a scan asked for (the worker is exiting). */
  close(): void {
    if (this.scanTimer !== undefined) clearTimeout(this.scanTimer);
    this.scanTimer = undefined;
    for (const w of this.scanWaiters.splice(0)) w();
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
      void this.start(name, path.join(this.pgdata, 'pg_wal', name));
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
