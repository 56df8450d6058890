/**
 * The unix-socket meeting point of the per-file clients PostgreSQL runs (wal-push --to,
 * wal-fetch --from) and their long-lived workers: one JSON request line in, one JSON reply line
 * out. Kept to node: built-ins and errors.js, because the client side runs once per WAL file.
 */

import { unlink } from 'node:fs/promises';
import net from 'node:net';
import { PgbkError } from '../errors.js';
import { ByteReader } from '../wal-push/byte-reader.js';

/**
 * Listen on `sock`, or undefined when a live worker already answers there (we are not needed).
 * A stale socket file (its worker died) is removed and taken over.
 */
export async function listenOnce(sock: string): Promise<net.Server | undefined> {
  const server = net.createServer();
  const attempt = (): Promise<boolean> =>
    new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
      server.listen(sock, () => resolve(true));
    });
  if (await attempt()) return server;
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(sock);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) return undefined;
  await unlink(sock).catch(() => undefined);
  return (await attempt()) ? server : undefined;
}

/**
 * Send one request line to the worker at `sock` and read its one-line JSON reply; 'no-worker' when
 * nothing listens there. A wedged worker must not stall PostgreSQL forever: after `timeoutMs`
 * without an answer this rejects (PostgreSQL retries the command). `who` names the worker in errors.
 */
export function askWorker<T>(sock: string, request: string, who: string, timeoutMs: number): Promise<T | 'no-worker'> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let buf = '';
    let connected = false;
    c.setEncoding('utf8');
    c.setTimeout(timeoutMs, () => c.destroy(new PgbkError('NETWORK', `no answer from the ${who} within ${timeoutMs / 1000} s`)));
    c.once('connect', () => {
      connected = true;
      c.write(request);
    });
    c.on('data', (d: string) => (buf += d));
    c.once('error', (err: NodeJS.ErrnoException) => {
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) resolve('no-worker');
      else reject(err instanceof PgbkError ? err : new PgbkError('NETWORK', `${who} connection failed: ${err.message}`));
    });
    c.once('close', () => {
      if (!connected) return;
      const line = buf.split('\n')[0] ?? '';
      if (line === '') {
        reject(new PgbkError('NETWORK', `the ${who} closed the connection without an answer`));
        return;
      }
      try {
        resolve(JSON.parse(line) as T);
      } catch {
        reject(new PgbkError('NETWORK', `unreadable answer from the ${who}: ${line.slice(0, 200)}`));
      }
    });
  });
}

/**
 * The worker side of askWorker: each connection sends one request line and gets `handle`'s reply
 * as one JSON line. `onActivity` runs when a client connects and after each reply (the workers'
 * idle clocks). Returns the open connections, for the worker to destroy when it gives up.
 */
export function serveRequests(server: net.Server, handle: (line: string) => Promise<unknown>, onActivity: () => void): Set<net.Socket> {
  const conns = new Set<net.Socket>();
  server.on('connection', (conn) => {
    conns.add(conn);
    conn.once('close', () => conns.delete(conn));
    conn.on('error', () => undefined);
    onActivity();
    const reader = new ByteReader(conn);
    void (async () => {
      const line = await reader.line();
      if (line === undefined) return conn.destroy();
      const reply = await handle(line);
      onActivity();
      conn.end(`${JSON.stringify(reply)}\n`);
    })();
  });
  return conns;
}
