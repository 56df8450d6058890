/**
 * Unpack one stored tar (base.tar.zst, <oid>.tar.gz, …) into a directory on this host in a single
 * pass, its sha256 compared with backup.json: `pgbk verify`'s use of the restore's unpacking
 * (unpack.ts, on LocalTransport: `zstd -d | tar -x` with Node only reading and hashing).
 */

import { createReadStream } from 'node:fs';
import type { Compression } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { localHost } from './host.js';
import { unpackInto } from './unpack.js';

export interface ExtractOptions {
  readonly file: string;
  readonly compression: Compression;
  readonly expectedSha256: string;
  readonly destDir: string;
  /** Called as stored bytes are read and as tar reports files. */
  readonly onProgress?: (storedBytes: number, files: number) => void;
  readonly server?: string;
  /** Aborting kills the decompressor and tar. */
  readonly signal?: AbortSignal;
  /** The stored bytes when they are not the local `file` (object storage, catalog/stored-source.ts); `file` then names them. */
  readonly source?: AsyncIterable<Buffer>;
}

export interface ExtractResult {
  readonly storedBytes: number;
  readonly files: number;
}

function decompressorFor(compression: Compression): readonly string[] | undefined {
  switch (compression) {
    case 'zstd':
      return ['zstd', '-d', '-c', '-q'];
    case 'gzip':
      return ['gzip', '-d', '-c'];
    case 'none':
      return undefined;
    default: {
      const never: never = compression;
      throw new PgbkError('INTERNAL', `unknown compression ${String(never)}`);
    }
  }
}

export async function extractStoredTar(opts: ExtractOptions): Promise<ExtractResult> {
  const r = await unpackInto({
    host: localHost(),
    dir: opts.destDir,
    source: opts.source ?? (createReadStream(opts.file, { highWaterMark: 1 << 20 }) as AsyncIterable<unknown>),
    decompress: decompressorFor(opts.compression),
    what: opts.file,
    expectedSha256: opts.expectedSha256,
    ...(opts.server === undefined ? {} : { server: opts.server }),
    ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  return { storedBytes: r.storedBytes, files: r.files };
}
