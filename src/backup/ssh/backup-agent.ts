/**
 * `pgbk backup-agent` (hidden): the database-host end of an `ssh` backup, started by the backup
 * host over the SSH transport (servers.<name>.ssh.pgbk). It reads one AgentRequest (JSON) on stdin:
 * the files to send and, for files the previous backup holds, that backup's chunk sha256s. It reads
 * each file once and sends only the chunks whose hash differs — so an incremental backup moves
 * over the network roughly what changed, not every touched file — compressed with zstd when asked,
 * so the network and the backup host carry compressed bytes.
 * Frames (agent-frames.ts) go to stdout; nothing else may be written there.
 *
 * Work is split so that both cores of a small database host are busy: this thread reads chunks
 * and writes frames; a pool of worker threads (agent-worker.ts, `workers`, default 2) hashes and
 * compresses them. Frames leave in request order: up to PIPELINE_PER_WORKER chunks per worker are
 * in flight, across file boundaries (small files keep the pool busy too).
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

import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { AGENT_PROTOCOL_VERSION, encodeFrame, type AgentRequest, type Frame } from './agent-frames.js';
import type { ChunkJob, ChunkResult } from './agent-worker.js';

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
  return o as AgentRequest;
}

function parseLsnParts(lsn: string): { hi: number; lo: number } | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  return m === null ? undefined : { hi: parseInt(m[1]!, 16), lo: parseInt(m[2]!, 16) };
}

/** Every page of `data` (whole pages only) carries a non-zero LSN before `before`. */
export function pagesPredate(data: Buffer, pageSize: number, before: { hi: number; lo: number }): boolean {
  if (data.length === 0 || data.length % pageSize !== 0) return false;
  const le = endianness() === 'LE';
  for (let at = 0; at < data.length; at += pageSize) {
    // PageHeaderData starts with pd_lsn: {uint32 xlogid; uint32 xrecoff}, in the server's byte order.
    const hi = le ? data.readUInt32LE(at) : data.readUInt32BE(at);
    const lo = le ? data.readUInt32LE(at + 4) : data.readUInt32BE(at + 4);
    if (hi === 0 && lo === 0) return false;
    if (hi > before.hi || (hi === before.hi && lo >= before.lo)) return false;
  }
  return true;
}

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

async function readFull(fd: Awaited<ReturnType<typeof open>>, buf: Buffer): Promise<number> {
  let at = 0;
  while (at < buf.length) {
    const { bytesRead } = await fd.read(buf, at, buf.length - at, null);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return at;
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

  run(data: Buffer, level: number | undefined, previous: string | undefined): Promise<ChunkResult> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    slot.busy++;
    const job: ChunkJob = {
      id,
      data,
      ...(level === undefined ? {} : { level }),
      ...(previous === undefined ? {} : { previous }),
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
}

/** Answer the one request on `input` with frames on `out`; 0, or 1 after an error frame. */
export async function runBackupAgent(input: Readable, out: Writable, errors: NodeJS.WritableStream): Promise<number> {
  await send(out, { type: 'hello', version: AGENT_PROTOCOL_VERSION });
  let pool: ChunkPool | undefined;
  // Frames in request order; a chunk's frames are known once its worker answers.
  const queue: Promise<Frame>[] = [];
  try {
    // The backup host starts the agent before it has listed the files: the threads start (and
    // load zstd) while the request is still on its way.
    pool = new ChunkPool(DEFAULT_AGENT_WORKERS);
    const req = parseRequest(await readAll(input));
    const workers = req.workers ?? DEFAULT_AGENT_WORKERS;
    if (workers !== DEFAULT_AGENT_WORKERS) {
      await pool.close();
      pool = new ChunkPool(workers);
    }
    const depth = workers * PIPELINE_PER_WORKER;
    const before = req.previousStartLsn === undefined ? undefined : parseLsnParts(req.previousStartLsn);
    const pageSize = req.pageSize ?? 8192;
    const totals: Totals = { bytesRead: 0, lsnSkipped: 0 };
    // Chunk buffers back from the workers, read into again: no 1 MiB allocation (and its page
    // faults) per chunk. Not those sent uncompressed: the pipe may still hold them.
    const spare: ArrayBuffer[] = [];
    const enqueue = async (f: Promise<Frame>): Promise<void> => {
      f.catch(() => undefined); // awaited in order below; never an unhandled rejection if we stop early
      queue.push(f);
      while (queue.length >= depth) await send(out, await queue.shift()!);
    };
    for (const f of req.files) {
      let fd: Awaited<ReturnType<typeof open>>;
      try {
        fd = await open(f.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await enqueue(Promise.resolve({ type: 'end', size: 0, missing: true }));
        continue;
      }
      try {
        let size = 0;
        for (let i = 0; ; i++) {
          const buf = Buffer.from(spare.pop() ?? new ArrayBuffer(req.chunkSize)); // its own memory (never the shared pool): it moves to a worker
          const n = await readFull(fd, buf);
          if (n === 0 && i > 0) break;
          const data = buf.subarray(0, n);
          size += n;
          const previous = f.hashes?.[i];
          const previousLength = f.previousSize === undefined ? undefined : Math.max(0, Math.min(req.chunkSize, f.previousSize - i * req.chunkSize));
          if (f.lsnPages === true && before !== undefined && previous !== undefined && previousLength === n && pagesPredate(data, pageSize, before)) {
            totals.lsnSkipped++;
            spare.push(buf.buffer as ArrayBuffer);
            await enqueue(Promise.resolve({ type: 'same' }));
          } else {
            await enqueue(
              pool.run(data, req.zstdLevel, previous).then((r): Frame => {
                const back = r.data;
                if (r.hash === previous || r.frame !== undefined) spare.push(back.buffer as ArrayBuffer);
                if (r.hash === previous) return { type: 'same' };
                const hash = Buffer.from(r.hash, 'hex');
                if (r.frame !== undefined)
                  return { type: 'compressed', hash, length: n, frame: Buffer.from(r.frame.buffer, r.frame.byteOffset, r.frame.byteLength) };
                return { type: 'chunk', hash, data: Buffer.from(back.buffer, back.byteOffset, back.byteLength) };
              }),
            );
          }
          if (n < req.chunkSize) break;
        }
        totals.bytesRead += size;
        await enqueue(Promise.resolve({ type: 'end', size, missing: false }));
      } finally {
        await fd.close();
      }
    }
    while (queue.length > 0) await send(out, await queue.shift()!);
    await send(out, { type: 'done', files: req.files.length, bytesRead: totals.bytesRead, lsnSkipped: totals.lsnSkipped });
    return 0;
  } catch (err) {
    const message = `backup-agent: ${(err as Error).message}`;
    errors.write(`${message}\n`);
    await send(out, { type: 'error', message }).catch(() => undefined);
    return 1;
  } finally {
    await pool?.close();
  }
}
