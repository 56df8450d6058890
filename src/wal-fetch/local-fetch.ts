/**
 * `pgbk wal-fetch`, PostgreSQL's restore_command: put one archived WAL file (segment, .history,
 * .partial, .backup) at DEST, verified, atomically. This is the Node path: restore_command's shell
 * fast path (fast-path.ts) has already handed over any segment the prefetch worker spooled, so
 * reaching here means a miss — the worker is behind, not running, on another timeline, or the
 * spooled copy failed its check. It reads the archive, and makes sure a worker is prefetching
 * after the segment it served.
 *
 * What PostgreSQL does with the exit status is the contract (src/cli/wal-fetch.ts maps errors to
 * it): "not in the archive" must be distinguishable from "cannot tell", so a missing catalog is
 * never reported as a missing file.
 */

import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { Desired } from '../config/resolved.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgbkError } from '../errors.js';
import { parseSegmentName, segmentNameFrom, segmentNumber } from '../pg/wal-name.js';
import {
  defaultSpoolDir,
  discardSpooled,
  ensureSpoolDir,
  liveWorker,
  pruneSpool,
  putInSpoolWith,
  writeDestAtomic,
  writeDestAtomicWith,
  writeWant,
} from './spool.js';
import type { WorkerArgs } from './prefetch-worker.js';

const SEGMENT_RE = /^[0-9A-F]{24}$/;
const FETCHABLE_RE = /^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;

export interface WalFetchOptions {
  readonly server: string;
  readonly name: string;
  readonly dest: string;
  readonly cwd: string;
  readonly configPath?: string;
  readonly env: NodeJS.ProcessEnv;
  /** Spool directory; default `<pgdata>/.pgbk-spool` from DEST. */
  readonly spool?: string;
  /** Segments to prefetch ahead; 0 disables prefetching. */
  readonly prefetch: number;
}

/** Where the file came from: the archive, or (method stream) pg_receivewal's current .partial. */
export type WalFetchSource = 'archive' | 'streaming-partial';

export function isFetchableName(name: string): boolean {
  return FETCHABLE_RE.test(name);
}

export async function fetchWal(opts: WalFetchOptions): Promise<WalFetchSource> {
  const { server, name } = opts;
  if (!isFetchableName(name)) {
    throw new PgbkError('USAGE', `wal-fetch: "${name}" is not a WAL segment, .history, .partial or .backup name`, { server });
  }
  const dest = path.resolve(opts.cwd, opts.dest);
  const spool = opts.spool === undefined ? defaultSpoolDir(dest, opts.cwd) : path.resolve(opts.cwd, opts.spool);
  const isSegment = SEGMENT_RE.test(name);
  const prefetching = isSegment && opts.prefetch > 0;

  if (prefetching) {
    // Whatever is spooled under this name was not taken by the fast path (still being written,
    // or it failed its check there): the archive answers instead. (Older segments are pruned once
    // this one is served: requestPrefetch.)
    await discardSpooled(spool, name);
  }

  const { loadConfig } = await import('../config/load.js');
  const { writeArchivedWal } = await import('../catalog/wal-archive.js');
  const { serverJsonPath } = await import('../catalog/layout.js');
  const desired = await loadConfig({
    ...(opts.configPath === undefined ? {} : { configPath: opts.configPath }),
    cwd: opts.cwd,
    env: opts.env,
  });
  if (!desired.servers.some((s) => s.name === server)) {
    throw new PgbkError('CONFIG', `wal-fetch: server "${server}" is not in ${desired.configPath}`, { server });
  }
  if (desired.s3 !== undefined) (await import('../catalog/open.js')).registerS3Catalog(desired.s3);
  let length: number;
  try {
    // Decompressed straight into DEST's temp file: no 16 MiB Buffer (bench/zstd.ts, end-to-end row).
    length = await writeDestAtomicWith(dest, (fd) => writeArchivedWal(desired.catalog, server, name, fd));
  } catch (err) {
    if (err instanceof PgbkError && err.code === 'NOT_FOUND') {
      // An unmounted or misconfigured catalog would look like "every file is missing" and end
      // recovery early at the wrong point: only a catalog we can see may answer "not found".
      if (desired.s3 !== undefined) await requireServerJson(desired.catalog, server);
      else {
        const marker = serverJsonPath(desired.catalog, server);
        try {
          await stat(marker);
        } catch (e) {
          throw new PgbkError('CATALOG', `wal-fetch: the catalog for server ${server} is not readable (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
            server,
            path: marker,
            hint: 'is the catalog mounted, and readable by the user PostgreSQL runs as?',
          });
        }
      }
      const partial = isSegment ? await streamedPartial(desired, server, name) : undefined;
      if (partial !== undefined) {
        await writeDestAtomic(dest, partial);
        return 'streaming-partial';
      }
    }
    throw err;
  }
  if (prefetching) {
    const spoolNext = (next: string, fd: number): Promise<number> => writeArchivedWal(desired.catalog, server, next, fd);
    await requestPrefetch(spool, opts, length, spoolNext);
  }
  return 'archive';
}

/**
 * An object-storage catalog answers "not found" only when it holds this server at all (its
 * server.json): a wrong prefix or server name must stop recovery, not end it early. Failures to
 * reach the store are PgbkError CATALOG already (exit 255).
 */
async function requireServerJson(catalog: string, server: string): Promise<void> {
  const { readIdentity } = await import('../catalog/identity.js');
  if ((await readIdentity(catalog, server)) === undefined) {
    const { locate } = await import('../catalog/open.js');
    throw new PgbkError('CATALOG', `wal-fetch: the catalog holds nothing for server ${server} (no server.json)`, {
      server,
      path: locate(catalog, `${server}/server.json`),
      hint: 'check catalog: (bucket and prefix) and the server name in restore_command',
    });
  }
}

/**
 * WAL method stream: the segment pg_receivewal is writing right now (streaming/NAME.partial) holds
 * the newest WAL there is. Served when NAME is not archived (yet), it lets a restore reach the very
 * latest committed transaction (Barman's get-wal --partial). pg_receivewal pre-sizes the file and
 * zero-fills it; PostgreSQL replays up to the last valid record and then treats the rest as the end
 * of WAL. A short file is zero-padded to a whole segment for the same reason.
 */
async function streamedPartial(desired: Desired, server: string, name: string): Promise<Buffer | undefined> {
  const config = desired.servers.find((s) => s.name === server);
  if (config?.wal.method !== 'stream') return undefined;
  const { readStreamedPartial, padToSegment } = await import('../catalog/streaming.js');
  const bytes = await readStreamedPartial(desired.catalog, server, name);
  if (bytes === undefined) return undefined;
  const { readIdentity } = await import('../catalog/identity.js');
  return padToSegment(bytes, (await readIdentity(desired.catalog, server))?.walSegmentSize ?? bytes.length);
}

/**
 * Tell the worker where PostgreSQL is, and start one if none is alive. `readInto` writes an
 * archived segment into a file (for the next one, spooled here when a worker is being started).
 */
async function requestPrefetch(spool: string, opts: WalFetchOptions, segSize: number, readInto: (name: string, fd: number) => Promise<number>): Promise<void> {
  // A .partial or an odd-sized file cannot be a full segment: nothing sensible to prefetch after it.
  if ((segSize & (segSize - 1)) !== 0 || segSize < 1024 * 1024) return;
  try {
    // Older segments are not asked for again, except the one just before this: at the end of the
    // archive PostgreSQL asks for the next segment (this Node path answers "not archived") and
    // then reads the last one once more, which the worker spooled again for that (prefetch-worker.ts).
    const parsed = parseSegmentName(opts.name);
    const segno = segmentNumber(opts.name, segSize);
    await pruneSpool(spool, parsed === undefined || segno === 0 ? opts.name : segmentNameFrom(parsed.timeline, segno - 1, segSize));
    if (!(await ensureSpoolDir(spool))) return;
    await writeWant(spool, { server: opts.server, name: opts.name, segSize, count: opts.prefetch, at: `${Date.now()}-${process.pid}` });
    if ((await liveWorker(spool)) !== undefined) return;
    // Placement into pg_wal only where the fast path looks for it: PostgreSQL's own restore
    // (%p = pg_wal/RECOVERYXLOG) with the default spool beside pg_wal (both relative to the data
    // directory in restore_command).
    const dest = path.resolve(opts.cwd, opts.dest);
    const pgWal =
      path.basename(dest) === 'RECOVERYXLOG' && path.basename(path.dirname(dest)) === 'pg_wal' && spool === defaultSpoolDir(dest, opts.cwd)
        ? path.dirname(dest)
        : undefined;
    const args: WorkerArgs = {
      spool,
      server: opts.server,
      cwd: opts.cwd,
      ...(pgWal === undefined ? {} : { pgWal }),
      ...(opts.configPath === undefined ? {} : { configPath: path.resolve(opts.cwd, opts.configPath) }),
    };
    const worker = fileURLToPath(new URL('./prefetch-worker.js', import.meta.url));
    const child = spawn(process.execPath, [worker, JSON.stringify(args)], {
      detached: true,
      stdio: 'ignore',
      cwd: opts.cwd,
      env: opts.env,
    });
    child.on('error', () => {
      // prefetching is an optimisation: without it every segment comes from the archive
    });
    child.unref();
    // The new worker needs a Node start before it spools anything, and PostgreSQL asks for the
    // next segment as soon as it has replayed this one: spooled here (this process is warm, ~50 ms
    // more before PostgreSQL gets this segment), that request is a fast-path hit instead of a
    // second Node start (~300 ms). The worker skips what is spooled already.
    if (parsed !== undefined) await spoolOneAhead(spool, segmentNameFrom(parsed.timeline, segno + 1, segSize), segSize, readInto);
  } catch {
    // same: a spool we cannot write only costs speed, never correctness
  }
}

/** Spool `name` as the worker does (verified, with its sidecar); anything wrong: spool nothing. */
async function spoolOneAhead(spool: string, name: string, segSize: number, readInto: (name: string, fd: number) => Promise<number>): Promise<void> {
  try {
    await putInSpoolWith(spool, name, async (fd) => {
      const length = await readInto(name, fd);
      if (length !== segSize) throw new Error(`${name}: ${length} bytes, expected ${segSize}`);
      return length;
    });
  } catch {
    // not archived (yet), or not usable: the worker or the Node path answers for it
  }
}
