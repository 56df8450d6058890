/**
 * A plain-HTTP proxy in front of radosgw that records every request (method, path, headers, body
 * sha256) and forwards it unchanged — same Host header, so the SigV4 signature still verifies —
 * or, with `damage`, with one byte of a PUT body flipped on the way (a body damaged in transit).
 * Tests count requests with it (HEADs per archived segment) and read what the client sent.
 */

import { createHash } from 'node:crypto';
import http from 'node:http';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly bodyBytes: number;
  /** sha256 (hex) of the body as the client sent it (before any damage). */
  readonly bodySha256: string;
}

export interface RecordingProxy {
  readonly endpoint: string;
  readonly seen: SeenRequest[];
  /** Flip one byte in the body of every PUT from now on (true), or forward them intact (false). */
  damagePuts(on: boolean): void;
  close(): Promise<void>;
}

export async function recordingProxy(targetPort: number): Promise<RecordingProxy> {
  const seen: SeenRequest[] = [];
  let damage = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        bodyBytes: body.length,
        bodySha256: createHash('sha256').update(body).digest('hex'),
      });
      if (damage && req.method === 'PUT' && body.length > 0) body[body.length >> 1] = (body[body.length >> 1]! ^ 0x01) & 0xff;
      const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    damagePuts: (on) => {
      damage = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
