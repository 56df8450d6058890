/**
 * `pgbk wal-push-worker`: the long-lived half of wal-push over SSH (DESIGN.md §6). It holds one SSH
 * connection (host key verified) with one `pgbk wal-receive` running on the backup host, listens
 * on a private unix socket for the tiny per-segment clients, and pushes ahead every segment already
 * marked .ready in pg_wal/archive_status (pusher.ts; woken by inotify as PostgreSQL marks one), so
 * that when PostgreSQL asks for the next one it is usually archived already — and acknowledged by
 * a marker the archive_command's shell fast path reads without starting Node (fast-path.ts). A client is answered "ok" only after wal-receive reported the file
 * durable in the archive. On any SSH failure it fails what is pending and exits (the next client
 * starts a fresh worker); after an idle period it exits by itself.
 */

import { watch, type FSWatcher } from 'node:fs';
import { mkdir, chmod } from 'node:fs/promises';
import path from 'node:path';
import { SshTransport } from '../transport/ssh.js';
import { listenOnce, serveRequests } from '../transport/worker-socket.js';
import { markerDir } from './fast-path.js';
import { Pusher } from './ssh-sink.js';
import { runtimeDir, socketPath, workerKey, type PushOptions } from './target.js';

const SCAN_INTERVAL_MS = 500;

export interface PushWorkerOptions {
  readonly opts: PushOptions;
  /** The data directory whose pg_wal/archive_status the worker watches. */
  readonly pgdata: string;
  /** Exit after this long without requests or new .ready files. */
  readonly idleMs: number;
  /** One diagnostic line (the worker's log file). */
  readonly log: (line: string) => void;
}

/** Run the worker until idle, signalled or the SSH side fails; its exit status. */
export async function runPushWorker(w: PushWorkerOptions): Promise<number> {
  const { opts, pgdata, idleMs, log } = w;
  const serverName = opts.server;
  await mkdir(runtimeDir(), { recursive: true, mode: 0o700 });
  await chmod(runtimeDir(), 0o700);
  const key = workerKey(opts, pgdata);
  const sock = socketPath(key);
  const markers = markerDir(key);
  await mkdir(markers, { recursive: true, mode: 0o700 });
  await chmod(markers, 0o700);
  const server = await listenOnce(sock);
  if (server === undefined) {
    log('another worker serves this target; exiting');
    return 0;
  }
  // Accept clients from the first moment (they connect while SSH is still being set up) and
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
  let transport: SshTransport;
  try {
    transport = await SshTransport.connect({
      host: opts.target.host,
      port: opts.target.port,
      user: opts.target.user,
      ...(opts.identityFile === undefined ? {} : { identityFile: opts.identityFile }),
      ...(opts.knownHosts === undefined ? {} : { knownHosts: opts.knownHosts }),
      server: serverName,
    });
  } catch (err) {
    // Tell the waiting clients why, then go: they exit non-zero and PostgreSQL retries later.
    resolvePusher(err instanceof Error ? err.message : String(err));
    server.close();
    await new Promise((r) => setTimeout(r, 500));
    for (const c of conns) c.destroy();
    throw err;
  }
  log(`connected to ${transport.description}; pushing ${serverName} from ${pgdata}`);
  const remote = [
    ...opts.remotePgbk.split(' ').filter((s) => s !== ''),
    'wal-receive',
    '--catalog',
    opts.target.catalog,
    '--compression',
    opts.compression,
    serverName,
  ];
  const receiver = transport.exec(remote);
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  const pusher = new Pusher(receiver, pgdata, markers, opts.compression, log, (why) => {
    log(why);
    finish(1);
  });
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
  // Stopped by signal: close the socket so that it does not outlive us — the archive_command's
  // fast path waits for markers only while the socket exists.
  const stop = (): void => finish(0);
  process.once('SIGTERM', stop).once('SIGINT', stop);
  const code = await finished;
  clearInterval(timer);
  watcher?.close();
  server.close();
  for (const c of conns) c.destroy();
  receiver.stdin.end();
  await Promise.race([receiver.done, new Promise((r) => setTimeout(r, 5000))]);
  await transport.close();
  log(`exiting (${code === 0 ? 'idle' : 'error'})`);
  // A daemon: whatever handle a library still holds must not keep it alive.
  setTimeout(() => process.exit(code), 1000).unref();
  return code;
}
