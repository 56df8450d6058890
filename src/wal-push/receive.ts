/**
 * `pgbk wal-receive --catalog DIR [--compression C] SERVER`: the backup-host end of wal-push over
 * SSH, started once per worker connection on an exec channel. Frames on stdin: a JSON header line
 * {"name","size"[,"encoding":"zstd"]} then exactly `size` bytes; for each, one JSON line on stdout
 * once the file is durable in the archive (or why it was refused). Every check of local archiving
 * applies: it is the same archive code (name, size, page magic, system identifier, duplicates, no
 * overwrite), run on the decompressed bytes.
 */

import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { tempPathFor } from '../lib/atomic.js';
import { readIdentity } from '../catalog/identity.js';
import { ensureServerDirs, incomingDir } from '../catalog/layout.js';
import { archiveWalBuffer } from '../catalog/wal-archive.js';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { classifyIncoming } from '../pg/wal-name.js';
import type { ServerIdentity } from '../model/types.js';
import { ByteReader } from './byte-reader.js';

export interface ReceiveReply {
  readonly name: string;
  readonly ok: boolean;
  readonly result?: 'archived' | 'duplicate';
  readonly error?: string;
}

const MAX_FILE = 1024 * 1024 * 1024; // largest WAL segment size PostgreSQL allows

/** A zstd frame whose Frame_Header_Descriptor (after the 4-byte magic) has the content-checksum bit. */
function hasContentChecksum(frame: Buffer): boolean {
  return frame.length > 4 && frame.readUInt32LE(0) === 0xfd2fb528 && (frame[4]! & 0x04) !== 0;
}

/**
 * A frame's payload: the file itself, or (encoding "zstd") the worker's zstd frame of it. The frame
 * is decompressed here whatever happens next — every archive check runs on the real bytes — and
 * zstd's content checksum catches damage in transit; the frame is then stored as is.
 */
async function receiveFrame(
  catalog: string,
  server: string,
  compression: Compression,
  name: string,
  encoding: string,
  payload: Buffer,
  reuse: { content?: Buffer },
): Promise<ReceiveReply> {
  if (encoding === 'none') return receiveOne(catalog, server, compression, name, payload);
  if (encoding !== 'zstd') return { name, ok: false, error: `unknown transfer encoding "${encoding}"` };
  let data: Buffer;
  try {
    // Into one buffer reused from frame to frame (frames are answered one at a time, and nothing
    // keeps the content once answered): a fresh 16 MiB per segment was paged in as it was decoded,
    // several times the decoding itself on some machines (bench/RESULTS, session 24).
    const zstd = await import('../catalog/zstd.js');
    const size = zstd.frameContentSize(payload);
    if (size !== undefined && size <= MAX_FILE && (reuse.content?.length ?? -1) < size) reuse.content = Buffer.allocUnsafe(size);
    data = zstd.decompressWhole(payload, reuse.content);
  } catch (err) {
    return { name, ok: false, error: `${name} arrived damaged (${(err as Error).message})` };
  }
  return receiveOne(catalog, server, compression, name, data, hasContentChecksum(payload) ? payload : undefined);
}

async function receiveOne(catalog: string, server: string, compression: Compression, name: string, data: Buffer, zstdOfData?: Buffer): Promise<ReceiveReply> {
  const kind = classifyIncoming(name);
  if (kind !== 'segment' && kind !== 'history' && kind !== 'backup' && kind !== 'partial') {
    return { name, ok: false, error: `${name} is not a WAL segment, .history or .backup file` };
  }
  let identity: ServerIdentity | undefined = await readIdentity(catalog, server);
  if (identity === undefined) {
    if (kind !== 'segment') return { name, ok: false, error: 'the cluster identity is not known yet (no segment archived so far)' };
    // First contact only: learning the identity reads the segment from a file. A dot-name in
    // incoming/ is "in flight" to every other pgbk reader.
    const tmp = tempPathFor(path.join(incomingDir(catalog, server), name));
    await writeFile(tmp, data, { mode: 0o640 });
    try {
      const { identityFromSegment } = await import('../apply/identity.js');
      identity = await identityFromSegment(catalog, server, tmp, new Date());
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }
  // Straight from memory: writing the 16 MiB to a temp file to read it back cost a copy each way.
  const outcome = await archiveWalBuffer({ catalog, server, name, identity, compression }, data, zstdOfData);
  if (outcome.result === 'rejected') return { name, ok: false, error: `refusing ${name}: ${outcome.reason}` };
  return { name, ok: true, result: outcome.result };
}

/**
 * Answer frames from `input` until it ends (the worker closed the channel: done), one reply line
 * each on `output`. A malformed frame header or a frame cut short is an error: the stream is out of
 * step and nothing after it can be trusted.
 */
export async function receiveFrames(catalog: string, server: string, compression: Compression, input: Readable, output: NodeJS.WritableStream): Promise<void> {
  await ensureServerDirs(catalog, server);
  const reader = new ByteReader(input);
  const reuse: { content?: Buffer } = {};
  for (;;) {
    const header = await reader.line();
    if (header === undefined) return;
    const h = JSON.parse(header) as { name?: unknown; size?: unknown; encoding?: unknown };
    const encoding = h.encoding ?? 'none';
    if (
      typeof h.name !== 'string' ||
      typeof encoding !== 'string' ||
      typeof h.size !== 'number' ||
      !Number.isInteger(h.size) ||
      h.size < 0 ||
      h.size > MAX_FILE
    ) {
      throw new PgbkError('USAGE', `wal-receive: bad frame header ${header.slice(0, 200)}`);
    }
    const data = await reader.exact(h.size);
    if (data === undefined) throw new PgbkError('NETWORK', `wal-receive: input ended inside ${h.name}`);
    let reply: ReceiveReply;
    try {
      reply = await receiveFrame(catalog, server, compression, path.basename(h.name), encoding, data, reuse);
    } catch (err) {
      reply = { name: h.name, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    output.write(`${JSON.stringify(reply)}\n`);
  }
}
