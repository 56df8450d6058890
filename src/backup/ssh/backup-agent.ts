/**
 * `pgbk backup-agent` (hidden): the database-host end of an `ssh` backup, started by the backup
 * host over the SSH transport (servers.<name>.ssh.pgbk). It reads one AgentRequest (JSON) on stdin:
 * the files to send and, for files the previous backup holds, that backup's chunk sha256s. It reads
 * each file once, hashes each chunk, and sends only the chunks whose hash differs — so an
 * incremental backup moves over the network roughly what changed, not every touched file.
 * Frames (agent-frames.ts) go to stdout; nothing else may be written there.
 *
 * Files are read to their end as they are now: an online backup copies files that change while
 * read (WAL replay from the backup's start repairs them), and a file that vanished (DROP TABLE) is
 * reported missing, not an error. Imports only node built-ins: it starts in ~100 ms.
 */

import { webcrypto } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { AGENT_PROTOCOL_VERSION, encodeFrame, type AgentRequest, type Frame } from './agent-frames.js';

/** Chunks read ahead and being hashed at once (1 MiB each). */
const HASH_DEPTH = 4;

async function readAll(input: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const d of input) parts.push(d as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function parseRequest(text: string): AgentRequest {
  const o = JSON.parse(text) as Partial<AgentRequest>;
  if (o.version !== AGENT_PROTOCOL_VERSION) throw new Error(`request version ${String(o.version)}; this agent speaks ${AGENT_PROTOCOL_VERSION}`);
  if (typeof o.chunkSize !== 'number' || o.chunkSize <= 0 || o.chunkSize > 64 * 1024 * 1024 || !Array.isArray(o.files)) throw new Error('bad request');
  return o as AgentRequest;
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

/** Send one file; returns the bytes read, or undefined when it no longer exists. */
async function sendFile(out: Writable, file: string, prev: readonly string[] | undefined, chunkSize: number): Promise<number | undefined> {
  let fd: Awaited<ReturnType<typeof open>>;
  try {
    fd = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // Pipelined: up to HASH_DEPTH chunks are read ahead and hashed on libuv's thread pool (WebCrypto
  // digests run there), so both cores hash while this thread sends; writing to a pipe blocks this
  // thread until SSH has taken the bytes.
  const readChunk = async (): Promise<Buffer> => {
    const buf = Buffer.allocUnsafe(chunkSize); // fresh: the previous one may still sit in the pipe's queue
    return buf.subarray(0, await readFull(fd, buf));
  };
  const pending: { readonly data: Buffer; readonly hash: Promise<ArrayBuffer> }[] = [];
  let produced = 0;
  let eof = false;
  try {
    let size = 0;
    for (let i = 0; ; i++) {
      while (!eof && pending.length < HASH_DEPTH) {
        const data = await readChunk();
        if (data.length === 0 && produced > 0) {
          eof = true;
          break;
        }
        const hash = webcrypto.subtle.digest('SHA-256', data);
        hash.catch(() => undefined); // awaited below; never an unhandled rejection if we stop early
        pending.push({ data, hash });
        produced++;
        if (data.length < chunkSize) eof = true;
      }
      const next = pending.shift();
      if (next === undefined) break;
      const hash = Buffer.from(await next.hash);
      if (prev !== undefined && prev[i] === hash.toString('hex')) await send(out, { type: 'same' });
      else await send(out, { type: 'chunk', hash, data: next.data });
      size += next.data.length;
    }
    return size;
  } finally {
    await fd.close();
  }
}

/** Answer the one request on `input` with frames on `out`; 0, or 1 after an error frame. */
export async function runBackupAgent(input: Readable, out: Writable, errors: NodeJS.WritableStream): Promise<number> {
  await send(out, { type: 'hello', version: AGENT_PROTOCOL_VERSION });
  try {
    const req = parseRequest(await readAll(input));
    let bytesRead = 0;
    for (const f of req.files) {
      const size = await sendFile(out, f.path, f.hashes, req.chunkSize);
      await send(out, size === undefined ? { type: 'end', size: 0, missing: true } : { type: 'end', size, missing: false });
      bytesRead += size ?? 0;
    }
    await send(out, { type: 'done', files: req.files.length, bytesRead });
    return 0;
  } catch (err) {
    const message = `backup-agent: ${(err as Error).message}`;
    errors.write(`${message}\n`);
    await send(out, { type: 'error', message }).catch(() => undefined);
    return 1;
  }
}
