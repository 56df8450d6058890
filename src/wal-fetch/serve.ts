/**
 * `pgbk wal-serve --catalog DIR SERVER` (hidden): the backup-host end of wal-fetch over SSH,
 * started once per fetch worker connection on an exec channel. It answers requests for archived
 * WAL files with the STORED bytes (compressed as archived) and the sha256 SHA256SUMS records for
 * them, so the database host checks the very bytes the archive vouched for after they crossed the
 * network, then decompresses them itself (less to send, and the checksum covers the transfer).
 *
 * Protocol (stdout is binary): first one hello line, {"hello":1,"systemIdentifier","walSegmentSize"}
 * or {"fatal":"why"} when the catalog holds nothing readable for SERVER (then it exits: the worker
 * must answer "cannot tell", never "not found"). Then, for each request line {"name"} on stdin,
 * in order: {"name","found":true,"compression","size","sha256","recorded"} followed by exactly
 * `size` bytes; or {"name","found":false}; or {"name","error"} when the file exists but cannot be
 * read. A file whose stored bytes do not match SHA256SUMS is still sent with the recorded sum:
 * the database host refuses it, and recovery stops there.
 */

import { readIdentity } from '../catalog/identity.js';
import { readStoredWal } from '../catalog/wal-archive.js';
import { sha256Hex } from '../lib/checksum.js';
import type { Compression } from '../config/resolved.js';
import type { Readable } from 'node:stream';
import { ByteReader } from '../wal-push/byte-reader.js';

export interface ServeHello {
  readonly hello?: 1;
  readonly systemIdentifier?: string;
  readonly walSegmentSize?: number;
  readonly fatal?: string;
}

export type ServeReply =
  | {
      readonly name: string;
      readonly found: true;
      readonly compression: Compression;
      readonly size: number;
      readonly sha256: string;
      readonly recorded: boolean;
      /** pg_receivewal's current streaming/NAME.partial, zero-padded (method stream; never spooled). */
      readonly streamingPartial?: true;
    }
  | { readonly name: string; readonly found: false }
  | { readonly name: string; readonly found?: undefined; readonly error: string };

/** Names wal-fetch may ask for; anything else (a path, a temp name) is refused. */
const FETCHABLE_RE = /^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;

/**
 * WAL method stream: the segment pg_receivewal is writing now holds the newest WAL there is; it is
 * served when NAME is not archived (yet), zero-padded to a whole segment, as local wal-fetch does
 * (src/restore/wal-fetch.ts streamedPartial).
 */
async function streamedPartial(catalog: string, server: string, name: string, segSize: number): Promise<Buffer | undefined> {
  if (!/^[0-9A-F]{24}$/.test(name)) return undefined;
  const { readStreamedPartial, padToSegment } = await import('../catalog/streaming.js');
  const bytes = await readStreamedPartial(catalog, server, name);
  return bytes === undefined ? undefined : padToSegment(bytes, segSize);
}

async function answer(catalog: string, server: string, name: string, segSize: number): Promise<{ reply: ServeReply; body?: Buffer }> {
  if (!FETCHABLE_RE.test(name)) return { reply: { name, error: `"${name}" is not a WAL segment, .history, .partial or .backup name` } };
  try {
    const stored = await readStoredWal(catalog, server, name);
    if (stored === undefined) {
      const partial = await streamedPartial(catalog, server, name, segSize);
      if (partial === undefined) return { reply: { name, found: false } };
      const reply: ServeReply = {
        name,
        found: true,
        compression: 'none',
        size: partial.length,
        sha256: sha256Hex(partial),
        recorded: false,
        streamingPartial: true,
      };
      return { reply, body: partial };
    }
    const sha256 = stored.recordedSha256 ?? sha256Hex(stored.bytes);
    return {
      reply: { name, found: true, compression: stored.compression, size: stored.bytes.length, sha256, recorded: stored.recordedSha256 !== undefined },
      body: stored.bytes,
    };
  } catch (err) {
    return { reply: { name, error: `cannot read ${name} from the archive: ${(err as Error).message}` } };
  }
}

function write(out: NodeJS.WritableStream, data: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (out.write(data)) resolve();
    else out.once('drain', () => resolve());
  });
}

/**
 * Serve SERVER's archive in `catalog` to the requests on `input` until it ends (the worker closed
 * the channel); 0 then, 1 when the catalog has nothing readable for SERVER (said in the hello).
 */
export async function serveWal(catalog: string, server: string, input: Readable, output: NodeJS.WritableStream): Promise<number> {
  // An unmounted or mistyped catalog would look like "every file is missing" and end recovery
  // early at the wrong point: only a catalog that knows the server may answer "not found".
  let identity;
  try {
    identity = await readIdentity(catalog, server);
  } catch (err) {
    identity = undefined;
    await write(output, `${JSON.stringify({ fatal: `the catalog ${catalog} is not readable for server ${server}: ${(err as Error).message}` })}\n`);
    return 1;
  }
  if (identity === undefined) {
    await write(output, `${JSON.stringify({ fatal: `the catalog ${catalog} has nothing for server ${server} (no server.json)` })}\n`);
    return 1;
  }
  const hello: ServeHello = { hello: 1, systemIdentifier: identity.systemIdentifier, walSegmentSize: identity.walSegmentSize };
  await write(output, `${JSON.stringify(hello)}\n`);
  const reader = new ByteReader(input);
  for (;;) {
    const line = await reader.line();
    if (line === undefined) return 0; // the worker closed the channel
    let name = '';
    try {
      const o = JSON.parse(line) as { name?: unknown };
      if (typeof o.name === 'string') name = o.name;
    } catch {
      // answered as a bad name below
    }
    const { reply, body } = await answer(catalog, server, name, identity.walSegmentSize);
    await write(output, `${JSON.stringify(reply)}\n`);
    if (body !== undefined) await write(output, body);
  }
}
