/**
 * `pgbk backup-agent` (hidden): the database-host end of an `ssh` backup, started by the backup
 * host over the SSH transport (servers.<name>.ssh.pgbk). It reads one AgentRequest (JSON) on stdin:
 * the files to send and, for files the previous backup holds, that backup's chunk sha256s. It reads
 * each file once and sends only the chunks whose hash differs — so an incremental backup moves
 * over the network roughly what changed, not every touched file — compressed with zstd when asked,
 * so the network and the backup host carry compressed bytes.
 * Frames (agent-frames.ts) go to stdout; nothing else may be written there.
 *
 * Work is split so that both cores of a small database host are busy: this thread opens files
 * and writes frames; a pool of worker threads (agent-worker.ts, `workers`, default 2) reads,
 * hashes and compresses the chunks (an incremental's time goes mostly to reading the changed
 * relation files whole: copying them from the page cache on one core took twice as long). Frames leave in request order: up to PIPELINE_PER_WORKER chunks per worker are
 * in flight, across file boundaries (small files keep the pool busy too).
 *
 * WAL: chunks of a file in its `unchanged` ranges (whole chunks the WAL since the previous
 * backup's start never touched: backup/ssh/wal-changes.ts) are sent as "same" without being read.
 *
 * Page LSNs: for relation main forks (request `lsnPages`), a chunk whose every page carries a
 * non-zero LSN before the previous backup's start (`previousStartLsn`) has not changed since that
 * backup copied it: it is sent as "same" without being hashed or compressed. An incremental after
 * a small update then reads changed files but hashes only the chunks that really changed.
 *
 * Files are read to their end as they are now: an online backup copies files that change while
 * read (WAL replay from the backup's start repairs them), and a file that vanished (DROP TABLE) is
 * reported missing, not an error. Imports only node built-ins here (the workers load zstd): it
 * starts in ~100 ms.
 */

import { type FileHandle, open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { AGENT_PROTOCOL_VERSION, encodeFrame, type AgentRequest, type Frame } from './agent-frames.js';
import type { ChunkJob, ChunkRead, ChunkResult } from './agent-worker.js';

/** Chunks in flight per worker thread (1 MiB each, plus its frame). */
const PIPELINE_PER_WORKER = 3;
export const DEFAULT_AGENT_WORKERS = 2;

async function readAll(input: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const d of input) parts.push(d as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function parseRequest(text: string): AgentRequest {
  const o = JSON.parse(text) as Partial<AgentRequest>;
  if (o.version !== AGENT_PROTOCOL_VERSION) throw new Error(`request version ${String(o.version)}; this agent speaks ${AGENT_PROTOCOL_VERSION}`);
  if (typeof o.chunkSize !== 'number' || o.chunkSize <= 0 || o.chunkSize > 64 * 1024 * 1024 || !Array.isArray(o.files)) throw new Error('bad request');
  if (o.zstdLevel !== undefined && (!Number.isInteger(o.zstdLevel) || o.zstdLevel < -7 || o.zstdLevel > 19))
    throw new Error(`bad zstd level ${String(o.zstdLevel)}`);
  if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 64)) throw new Error(`bad worker count ${String(o.workers)}`);
  if (o.previousStartLsn !== undefined && parseLsnParts(o.previousStartLsn) === undefined) throw new Error(`bad LSN ${o.previousStartLsn}`);
  if (o.pageSize !== undefined && (!Number.isInteger(o.pageSize) || o.pageSize < 1024 || o.pageSize > 65536))
    throw new Error(`bad page size ${String(o.pageSize)}`);
  for (const f of o.files) {
    const u = (f as { unchanged?: unknown }).unchanged;
    if (
      u !== undefined &&
      !(Array.isArray(u) && u.every((r) => Array.isArray(r) && r.length === 2 && Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] >= 0 && r[0] < r[1]))
    )
      throw new Error(`bad unchanged chunk ranges for ${String((f as { path?: unknown }).path)}`);
  }
  return o as AgentRequest;
}

function parseLsnParts(lsn: string): { hi: number; lo: number } | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  return m === null ? undefined : { hi: parseInt(m[1]!, 16), lo: parseInt(m[2]!, 16) };
}

export { pagesPredate } from './page-lsn.js';

/** Write one frame, waiting for the pipe to drain when it is full (backpressure from SSH). */
async function send(out: Writable, f: Frame): Promise<void> {
  let ok = true;
  for (const b of encodeFrame(f)) ok = out.write(b);
  if (!ok) {
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        out.off('drain', onDrain);
        reject(e);
      };
      const onDrain = (): void => {
        out.off('error', onError);
        resolve();
      };
      out.once('drain', onDrain);
      out.once('error', onError);
    });
  }
}

/** Worker threads hashing (and compressing) chunks; jobs go to the least busy one. */
class ChunkPool {
  private readonly workers: { readonly worker: Worker; busy: number }[] = [];
  private readonly waiting = new Map<number, { resolve(r: ChunkResult): void; reject(e: Error): void }>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(new URL('./agent-worker.js', import.meta.url));
      const slot = { worker, busy: 0 };
      worker.on('message', (r: ChunkResult) => {
        slot.busy--;
        const w = this.waiting.get(r.id);
        this.waiting.delete(r.id);
        if (r.error !== undefined) w?.reject(new Error(`chunk worker: ${r.error}`));
        else w?.resolve(r);
      });
      worker.on('error', (e: Error) => this.fail(e));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`chunk worker exited ${code}`));
      });
      this.workers.push(slot);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  run(data: Buffer, level: number | undefined, previous: string | undefined, read?: ChunkRead): Promise<ChunkResult> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    slot.busy++;
    const job: ChunkJob = {
      id,
      data,
      ...(level === undefined ? {} : { level }),
      ...(previous === undefined ? {} : { previous }),
      ...(read === undefined ? {} : { read }),
    };
    return new Promise<ChunkResult>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // The chunk's buffer (its own ArrayBuffer) moves to the worker.
      slot.worker.postMessage(job, [data.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

interface Totals {
  bytesRead: number;
  lsnSkipped: number;
  /** Chunks not read at all: the WAL since the previous backup does not touch them. */
  walSkipped: number;
}

/** Chunk `i` lies in one of the ranges [from, to). */
function inRanges(ranges: readonly (readonly [number, number])[] | undefined, i: number): boolean {
  return ranges?.some(([from, to]) => i >= from && i < to) === true;
}

/** A file being sent: its descriptor (read by the workers) and what its chunks added up to so far. */
interface OpenFile {
  readonly fh: FileHandle;
  size: number;
  /** A short chunk was sent (the file's end as read): later chunks, if any, are dropped. */
  ended: boolean;
}

/** What leaves next, in request order: a chunk once its worker answered, or a file's end. */
type Step =
  | { readonly kind: 'chunk'; readonly file: OpenFile; readonly index: number; readonly previous: string | undefined; readonly result: ChunkResult }
  | { readonly kind: 'unchanged'; readonly file: OpenFile }
  | { readonly kind: 'end'; readonly file: OpenFile }
  | { readonly kind: 'missing' };

/** Answer the one request on `input` with frames on `out`; 0, or 1 after an error frame. */
export async function runBackupAgent(input: Readable, out: Writable, errors: NodeJS.WritableStream): Promise<number> {
  await send(out, { type: 'hello', version: AGENT_PROTOCOL_VERSION });
  let pool: ChunkPool | undefined;
  // Steps in request order; a chunk's step is known once its worker answers.
  const queue: Promise<Step>[] = [];
  const opened = new Set<FileHandle>();
  try {
    // The backup host starts the agent before it has listed the files: the threads start (and
    // load zstd) while the request is still on its way.
    pool = new ChunkPool(DEFAULT_AGENT_WORKERS);
    const req = parseRequest(await readAll(input));
    const t0 = performance.now();
    let sendWaitMs = 0;
    const note = (what: string): void => {
      if (req.profile === true) errors.write(`[profile] agent ${what} (at ${(performance.now() / 1000).toFixed(3)} s since agent start)\n`);
    };
    note('request read');
    const workers = req.workers ?? DEFAULT_AGENT_WORKERS;
    if (workers !== DEFAULT_AGENT_WORKERS) {
      await pool.close();
      pool = new ChunkPool(workers);
    }
    const depth = workers * PIPELINE_PER_WORKER;
    const before = req.previousStartLsn === undefined ? undefined : parseLsnParts(req.previousStartLsn);
    const pageSize = req.pageSize ?? 8192;
    const totals: Totals = { bytesRead: 0, lsnSkipped: 0, walSkipped: 0 };
    // Chunk buffers back from the workers, read into again: no 1 MiB allocation (and its page
    // faults) per chunk. Not those sent uncompressed: the pipe may still hold them.
    const spare: ArrayBuffer[] = [];
    /** The frame a step sends (none for a chunk past its file's end). */
    const frameOf = async (step: Step): Promise<Frame | undefined> => {
      if (step.kind === 'missing') return { type: 'end', size: 0, missing: true };
      const file = step.file;
      if (step.kind === 'unchanged') {
        // A whole chunk, as the previous backup stored it (the backup host knows it from the WAL).
        if (file.ended) return undefined;
        file.size += req.chunkSize;
        totals.walSkipped++;
        return { type: 'same' };
      }
      if (step.kind === 'end') {
        totals.bytesRead += file.size;
        opened.delete(file.fh);
        await file.fh.close(); // every chunk of it is read: their steps came first
        return { type: 'end', size: file.size, missing: false };
      }
      const r = step.result;
      const n = r.length ?? 0;
      // As a sequential read to the end: an empty read past the first chunk, or anything after a
      // short chunk (the file shrank while read), is not part of the file.
      if (file.ended || (n === 0 && step.index > 0)) {
        file.ended = true;
        spare.push(r.data.buffer as ArrayBuffer);
        return undefined;
      }
      file.size += n;
      if (n < req.chunkSize) file.ended = true;
      if (r.lsnSame === true || r.hash === step.previous || r.frame !== undefined) spare.push(r.data.buffer as ArrayBuffer);
      if (r.lsnSame === true) {
        totals.lsnSkipped++;
        return { type: 'same' };
      }
      if (r.hash === step.previous) return { type: 'same' };
      const hash = Buffer.from(r.hash, 'hex');
      if (r.frame !== undefined) return { type: 'compressed', hash, length: n, frame: Buffer.from(r.frame.buffer, r.frame.byteOffset, r.frame.byteLength) };
      return { type: 'chunk', hash, data: Buffer.from(r.data.buffer, r.data.byteOffset, n) };
    };
    const sendNext = async (): Promise<void> => {
      const w0 = performance.now();
      const step = await queue.shift()!;
      sendWaitMs += performance.now() - w0;
      const frame = await frameOf(step);
      if (frame !== undefined) await send(out, frame);
    };
    const enqueue = async (step: Promise<Step>): Promise<void> => {
      step.catch(() => undefined); // awaited in order below; never an unhandled rejection if we stop early
      queue.push(step);
      while (queue.length >= depth) await sendNext();
    };
    for (const f of req.files) {
      let fh: FileHandle;
      try {
        fh = await open(f.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await enqueue(Promise.resolve({ kind: 'missing' }));
        continue;
      }
      opened.add(fh);
      const file: OpenFile = { fh, size: 0, ended: false };
      // Its chunks as long as it is now, read by the workers (both cores copy bytes): the
      // result is a sequential read's when the file does not change meanwhile; when it does,
      // WAL replay from the backup's start repairs it, as for any file changing while copied.
      const statSize = (await fh.stat()).size;
      const chunks = Math.max(1, Math.ceil(statSize / req.chunkSize));
      for (let i = 0; i < chunks; i++) {
        if (inRanges(f.unchanged, i) && f.hashes?.[i] !== undefined && (i + 1) * req.chunkSize <= Math.min(statSize, f.previousSize ?? 0)) {
          await enqueue(Promise.resolve({ kind: 'unchanged', file }));
          continue;
        }
        const buf = Buffer.from(spare.pop() ?? new ArrayBuffer(req.chunkSize)); // its own memory (never the shared pool): it moves to a worker
        const previous = f.hashes?.[i];
        const previousLength = f.previousSize === undefined ? undefined : Math.max(0, Math.min(req.chunkSize, f.previousSize - i * req.chunkSize));
        const lsn =
          f.lsnPages === true && before !== undefined && previous !== undefined && previousLength !== undefined
            ? { hi: before.hi, lo: before.lo, pageSize, previousLength }
            : undefined;
        const read: ChunkRead = { fd: fh.fd, position: i * req.chunkSize, ...(lsn === undefined ? {} : { lsn }) };
        await enqueue(pool.run(buf, req.zstdLevel, previous, read).then((result): Step => ({ kind: 'chunk', file, index: i, previous, result })));
      }
      await enqueue(Promise.resolve({ kind: 'end', file }));
    }
    note(`files dispatched in ${((performance.now() - t0) / 1000).toFixed(3)} s (waiting for workers ${(sendWaitMs / 1000).toFixed(3)} s)`);
    while (queue.length > 0) await sendNext();
    const read = totals.bytesRead - totals.walSkipped * req.chunkSize;
    note(`last frame sent: ${(read / 1e6).toFixed(0)} MB read, ${totals.lsnSkipped} chunks by page LSN, ${totals.walSkipped} unread by WAL`);
    await send(out, { type: 'done', files: req.files.length, bytesRead: read, lsnSkipped: totals.lsnSkipped, walSkipped: totals.walSkipped });
    return 0;
  } catch (err) {
    const message = `backup-agent: ${(err as Error).message}`;
    errors.write(`${message}\n`);
    await send(out, { type: 'error', message }).catch(() => undefined);
    return 1;
  } finally {
    await pool?.close(); // no worker reads a descriptor any more
    for (const fh of opened) await fh.close().catch(() => undefined);
  }
}
