/**
 * `pgbk wal-fetch-worker` (hidden): the long-lived half of wal-fetch over SSH, on the database
 * host. It holds one SSH connection to the backup host (host key verified, keepalives) with one
 * `pgbk wal-serve` on it, answers the tiny per-segment clients on a private unix socket (it writes
 * the verified file to the path PostgreSQL gave, then replies), and prefetches the next segments
 * into the data directory's spool so that most segments never reach Node at all.
 *
 * It exits by itself: when the spool it made is removed (recovery_end_command: recovery is over),
 * when nothing happened for --idle-exit seconds (PostgreSQL paused at the target, or stopped), on
 * SIGTERM, and on any SSH failure (pending clients get "cannot tell"; the next miss starts a fresh
 * worker).
 */

import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultSpoolDir, writeDestAtomic } from './spool.js';
import { SshTransport } from '../transport/ssh.js';
import { listenOnce, serveRequests } from '../transport/worker-socket.js';
import { runtimeDir } from '../wal-push/target.js';
import { yieldToRecovery } from './priority.js';
import { Prefetcher } from './remote-prefetch.js';
import { RemoteArchive } from './remote-archive.js';
import { fetchSocketPath, fetchWorkerKey, type FetchOptions, type FetchReply, type FetchRequest } from './source.js';
import { plural } from '../lib/plural.js';
import { settleWithin } from '../lib/timer.js';

const POLL_MS = 20;
const SEGMENT_RE = /^[0-9A-F]{24}$/;

export interface FetchWorkerOptions {
  readonly opts: FetchOptions;
  /** The data directory PostgreSQL recovers (its spool and pg_wal). */
  readonly pgdata: string;
  /** Exit after this long without requests or prefetch progress. */
  readonly idleMs: number;
  /** One diagnostic line (the worker's log file). */
  readonly log: (line: string) => void;
}

/** Run the worker until recovery is over, idle, signalled or the SSH side fails; its exit status. */
export async function runFetchWorker(w: FetchWorkerOptions): Promise<number> {
  const { opts, pgdata, idleMs, log } = w;
  const serverName = opts.server;
  await mkdir(runtimeDir(), { recursive: true, mode: 0o700 });
  await chmod(runtimeDir(), 0o700);
  const sock = fetchSocketPath(fetchWorkerKey(opts, pgdata));
  const server = await listenOnce(sock);
  if (server === undefined) {
    log('another worker serves this data directory; exiting');
    return 0;
  }
  let lastActivity = Date.now();
  let stopping = false;
  process.once('SIGTERM', () => (stopping = true));
  yieldToRecovery();
  // Accept clients from the first moment (they connect while SSH is still being set up).
  let resolveArchive!: (a: RemoteArchive | string) => void;
  const archiveReady = new Promise<RemoteArchive | string>((r) => (resolveArchive = r));
  const spool = defaultSpoolDir(`${pgdata}/pg_wal/x`, pgdata);
  let servedByNode = 0;
  const prefetcher = new Prefetcher({
    spool,
    pgWal: path.join(pgdata, 'pg_wal'),
    count: opts.prefetch,
    fetch: async (name) => {
      const a = await archiveReady;
      return typeof a === 'string' ? { kind: 'fatal', error: a } : a.fetch(name);
    },
    log,
    onProgress: () => (lastActivity = Date.now()),
  });
  const handle = async (req: FetchRequest): Promise<FetchReply> => {
    const a = await archiveReady;
    if (typeof a === 'string') return { status: 'fatal', error: a };
    const f = await a.fetch(req.name);
    if (f.kind === 'absent') return { status: 'absent' };
    if (f.kind === 'fatal') return { status: 'fatal', error: f.error };
    await writeDestAtomic(req.dest, f.data);
    if (f.streamingPartial === true) {
      log(`served ${req.name} from pg_receivewal's current .partial on the backup host (the newest streamed WAL)`);
      return { status: 'ok' };
    }
    if (SEGMENT_RE.test(req.name)) {
      servedByNode++;
      log(`served ${req.name} to restore_command (not spooled)`);
      // Start the next fetches (and their .pending markers) before PostgreSQL asks for the next one.
      await prefetcher
        .served(req.name, f.data.length)
        .then(() => prefetcher.step())
        .catch((err: unknown) => log(`prefetching after ${req.name}: ${(err as Error).message}`));
    }
    return { status: 'ok' };
  };
  const conns = serveRequests(
    server,
    async (line): Promise<FetchReply> => {
      try {
        const req = JSON.parse(line) as Partial<FetchRequest>;
        if (typeof req.name !== 'string' || typeof req.dest !== 'string') throw new Error('bad request');
        return await handle({ name: req.name, dest: req.dest });
      } catch (err) {
        return { status: 'fatal', error: (err as Error).message };
      }
    },
    () => (lastActivity = Date.now()),
  );

  let transport: SshTransport | undefined;
  let archive: RemoteArchive | undefined;
  let dead: string | undefined;
  try {
    transport = await SshTransport.connect({
      host: opts.source.host,
      port: opts.source.port,
      user: opts.source.user,
      ...(opts.identityFile === undefined ? {} : { identityFile: opts.identityFile }),
      ...(opts.knownHosts === undefined ? {} : { knownHosts: opts.knownHosts }),
      server: serverName,
    });
    const serve = transport.exec([...opts.remotePgbk.split(' ').filter((s) => s !== ''), 'wal-serve', '--catalog', opts.source.catalog, serverName]);
    archive = await RemoteArchive.open(serve, (why) => (dead = why));
  } catch (err) {
    // Tell the waiting clients why ("cannot tell": recovery stops rather than ends early), then go.
    const why = `cannot reach the archive on the backup host: ${err instanceof Error ? err.message : String(err)}`;
    log(why);
    resolveArchive(why);
    await sleep(500);
    server.close();
    for (const c of conns) c.destroy();
    await transport?.close();
    setTimeout(() => process.exit(1), 1000).unref();
    return 1;
  }
  log(`connected to ${transport.description}; serving ${serverName} WAL for ${pgdata} (prefetch ${opts.prefetch})`);
  resolveArchive(archive);

  let why = 'idle';
  for (;;) {
    if (stopping) {
      why = 'SIGTERM';
      break;
    }
    if (dead !== undefined) {
      why = dead;
      break;
    }
    if ((await prefetcher.step()) === 'gone') {
      why = 'the spool was removed: recovery is over';
      break;
    }
    if (Date.now() - lastActivity > idleMs && conns.size === 0) break;
    await Promise.race([sleep(POLL_MS), prefetcher.settled()]);
  }
  server.close();
  for (const c of conns) c.destroy();
  await settleWithin(prefetcher.drain(), 5000);
  archive.close();
  await transport.close();
  log(`exiting (${why}); ${plural(servedByNode, 'segment')} served to restore_command, ${prefetcher.spooledCount} prefetched (into pg_wal or the spool)`);
  // A daemon: whatever handle a library still holds must not keep it alive.
  setTimeout(() => process.exit(dead === undefined ? 0 : 1), 500).unref();
  return dead === undefined ? 0 : 1;
}
