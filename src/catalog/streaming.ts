/**
 * <catalog>/<server>/streaming/: pg_receivewal's directory. Completed segments (and timeline
 * history files) are handed to the ordinary archive path by hard-linking them into incoming/ —
 * atomic, complete at once, never clobbering — so they are validated, compressed, checksummed and
 * de-duplicated exactly like pushed WAL (push and stream may both be on). The segment in progress,
 * NAME.partial, stays here: it is the newest WAL there is, for a restore to the very latest point.
 */

import { link, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../lib/atomic.js';
import { incomingDir, localServerDir } from './layout.js';
import { localRootOf } from './local-spool.js';
import { PgbkError } from '../errors.js';
import { isHistoryName, isSegmentName } from '../pg/wal-name.js';

/** streaming/ of a server: in the catalog directory, or in the spool of an object-storage catalog. */
export function streamingDir(catalog: string, server: string): string {
  return path.join(localServerDir(catalog, server, 'streaming/ (wal: { method: stream })'), 'streaming');
}

export async function ensureStreamingDir(catalog: string, server: string): Promise<string> {
  const dir = streamingDir(catalog, server);
  await mkdir(dir, { recursive: true, mode: 0o750 });
  return dir;
}

/** Completed files pg_receivewal left in streaming/: segments and .history, not .partial or temp names. */
export function isCompletedStreamFile(name: string): boolean {
  return isSegmentName(name) || isHistoryName(name);
}

export interface HandOver {
  readonly moved: number;
  /** Same name still waiting in incoming/: left here for the next pass (the archiver compares them then). */
  readonly deferred: number;
}

/** Move completed streamed files into incoming/ (link, then unlink here). Idempotent and crash-safe. */
export async function handOverStreamed(catalog: string, server: string): Promise<HandOver> {
  const dir = streamingDir(catalog, server);
  let names: string[];
  try {
    names = (await readdir(dir)).filter(isCompletedStreamFile).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { moved: 0, deferred: 0 };
    throw new PgbkError('CATALOG', `cannot list streaming/: ${(err as Error).message}`, { server, path: dir });
  }
  const incoming = incomingDir(catalog, server);
  const linked: string[] = [];
  let deferred = 0;
  for (const name of names) {
    try {
      await link(path.join(dir, name), path.join(incoming, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        deferred++;
        continue;
      }
      throw new PgbkError('CATALOG', `cannot hand ${name} to incoming/: ${(err as Error).message}`, { server, path: incoming });
    }
    linked.push(name);
  }
  if (linked.length === 0) return { moved: 0, deferred };
  // The links must be durable before the originals go; a crash in between leaves two links to one
  // file, which the next pass sees as EEXIST now and as a duplicate once incoming/ is archived.
  await fsyncDir(incoming);
  for (const name of linked) {
    try {
      await unlink(path.join(dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  await fsyncDir(dir);
  return { moved: linked.length, deferred };
}

/**
 * streaming/NAME.partial if pg_receivewal is writing segment NAME right now: the newest WAL there
 * is, for a restore to the very latest point (wal-fetch may serve it when NAME is not archived).
 */
export function streamingPartialPath(catalog: string, server: string, segment: string): string {
  if (!isSegmentName(segment)) throw new PgbkError('USAGE', `"${segment}" is not a WAL segment name`, { server });
  return path.join(streamingDir(catalog, server), `${segment}.partial`);
}

/**
 * The bytes of streaming/NAME.partial, or undefined when there is none — also when the catalog has
 * no local directory for streaming/ at all (an object store without s3.spool; validate requires the
 * spool for method stream). One reader for wal-fetch, wal-serve and restore's tablespace scan.
 */
export async function readStreamedPartial(catalog: string, server: string, segment: string): Promise<Buffer | undefined> {
  if (localRootOf(catalog) === undefined) return undefined;
  try {
    return await readFile(streamingPartialPath(catalog, server, segment));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * A .partial as a whole segment: pg_receivewal pre-sizes and zero-fills its file, and PostgreSQL
 * replays up to the last valid record and takes the zeros after it as the end of WAL; a short file
 * is zero-padded the same way.
 */
export function padToSegment(bytes: Buffer, segSize: number): Buffer {
  if (bytes.length >= segSize) return bytes;
  const padded = Buffer.alloc(segSize);
  bytes.copy(padded);
  return padded;
}
