/**
 * `pgbk wal-push-worker`: the long-lived half of wal-push (DESIGN.md §6), one per (sink, server,
 * data directory). It opens its sink — the local catalog (local-sink.ts), or one SSH connection
 * (host key verified) with one `pgbk wal-receive` on the backup host (ssh-sink.ts) — listens on a
 * private unix socket for the tiny per-segment clients, and pushes ahead every segment already
 * marked .ready in pg_wal/archive_status (pusher.ts; woken by inotify as PostgreSQL marks one), so
 * that when PostgreSQL asks for the next one it is usually archived already — and acknowledged by
 * a marker the archive_command's shell fast path reads without starting Node (fast-path.ts). A
 * client is answered "ok" only after the sink reported the file durable in the archive. When the
 * sink fails (SSH) it fails what is pending and exits (the next client starts a fresh worker);
 * after an idle period it exits by itself.
 */

import { watch, type FSWatcher } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { listenOnce, serveRequests } from '../transport/worker-socket.js';
import { markerDir } from './fast-path.js';
import { Pusher, type OpenedSink } from './pusher.js';
import { runtimeDir, socketPath } from './target.js';

const SCAN_INTERVAL_MS = 500;

export interface PushWorkerOptions {
  /** The worker's identity (target.ts workerKey / localWorkerKey): its socket and marker names. */
  readonly key: string;
  /** The data directory whose pg_wal/archive_status the worker watches. */
  readonly pgdata: string;
  /** Exit after this long without requests or new .ready files. */
  readonly idleMs: number;
  /** One diagnostic line (the worker's log file). */
  readonly log: (line: string) => void;
  /** Open the sink; `onDead` ends the worker (the sink can take nothing more). */
  open(onDead: (why: string) => void): Promise<OpenedSink>;
  /** For the log: "pushing SERVER from PGDATA". */
  readonly server: string;
}

/** Run the worker until idle, signalled or its sink fails; its exit status. */
export async function runPushWorker(w: PushWorkerOptions): Promise<number> {
  const { key, pgdata, idleMs, log } = w;
  await mkdir(runtimeDir(), { recursive: true, mode: 0o700 });
  await chmod(runtimeDir(), 0o700);
  const sock = socketPath(key);
  const markers = markerDir(key);
  await mkdir(markers, { recursive: true, mode: 0o700 });
  await chmod(markers, 0o700);
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  // Stopped by signal: close the socket so that it does not outlive us — the archive_command's
  // fast path waits for markers only while the socket exists. Listened for before the socket
  // exists: a worker stopped while it still opened its sink used to die by the signal's default
  // action and leave the socket behind, so every segment waited the fast path's --wait-seconds
  // until a new worker replaced it.
  const stop = (): void => finish(0);
  process.once('SIGTERM', stop).once('SIGINT', stop);
  const server = await listenOnce(sock);
  if (server === undefined) {
    log('another worker serves this target; exiting');
    return 0;
  }
  // Accept clients from the first moment (they connect while the sink is still being set up) and
  // let them wait for the pusher.
  let resolvePusher!: (p: Pusher | string) => void;
  const pusherReady = new Promise<Pusher | string>((r) => (resolvePusher = r));
  let lastActivity = Date.now();
  const conns = serveRequests(
    server,
    async (line) => {
      let req: { name?: unknown; path?: unknown };
      try {
        req = JSON.parse(line) as typeof req;
      } catch {
        return { ok: false, error: 'bad request' };
      }
      if (typeof req.name !== 'string' || typeof req.path !== 'string') return { ok: false, error: 'bad request' };
      const p = await pusherReady;
      if (typeof p === 'string') return { ok: false, error: p };
      const reply = await p.push(req.name, req.path);
      setImmediate(() => void p.scan()); // push ahead once this client has its answer
      return reply;
    },
    () => (lastActivity = Date.now()),
  );
  // Before the sink is open: tell the waiting clients why, then go (the socket closed first): they
  // exit non-zero and PostgreSQL retries later.
  const abandon = async (why: string): Promise<void> => {
    resolvePusher(why);
    server.close();
    await new Promise((r) => setTimeout(r, 500));
    for (const c of conns) c.destroy();
  };
  let opened: OpenedSink;
  try {
    const opening = w.open((why) => {
      log(why);
      finish(1);
    });
    const first = await Promise.race([opening, finished]);
    if (typeof first === 'number') {
      // Stopped (or failed) before the sink was open: nothing was pushed, nothing is pending.
      log('stopped while opening its sink; exiting');
      void opening.then((o) => o.close()).catch(() => undefined);
      await abandon('the wal-push worker was stopped while it started');
      setTimeout(() => process.exit(first), 1000).unref();
      return first;
    }
    opened = first;
  } catch (err) {
    await abandon(err instanceof Error ? err.message : String(err));
    throw err;
  }
  log(`${opened.description}; pushing ${w.server} from ${pgdata}`);
  const pusher = new Pusher(opened.sink, pgdata, markers, log);
  resolvePusher(pusher);
  // PostgreSQL runs archive_command the moment it creates a .ready file, and the fast path waits
  // for our marker: start pushing on the directory event, not on the next periodic scan.
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.join(pgdata, 'pg_wal', 'archive_status'), (_event, file) => {
      if (typeof file === 'string' && file.endsWith('.ready')) {
        lastActivity = Date.now();
        void pusher.scan();
      }
    });
    watcher.on('error', () => undefined); // the periodic scan still runs
  } catch {
    // no inotify: the periodic scan alone
  }
  const timer = setInterval(() => {
    void pusher.scan();
    if (Date.now() - Math.max(lastActivity, pusher.lastSawReady) > idleMs) finish(0);
  }, SCAN_INTERVAL_MS);
  void pusher.scan();
  const code = await finished;
  clearInterval(timer);
  pusher.close();
  watcher?.close();
  server.close();
  for (const c of conns) c.destroy();
  await opened.close();
  log(`exiting (${code === 0 ? 'idle' : 'error'})`);
  // A daemon: whatever handle a library still holds must not keep it alive.
  setTimeout(() => process.exit(code), 1000).unref();
  return code;
}
