/**
 * Reading stored tars before anything is written: which decompressor a stored file needs, and one
 * member out of a stored tar (the tablespace_map, to check where tablespaces go). Unpacking onto
 * the target host is unpack.ts.
 */

import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { compressionOfFile } from '../catalog/compress.js';
import { PgbkError } from '../errors.js';

export function decompressorFor(file: string): readonly string[] | undefined {
  const c = compressionOfFile(file);
  if (c === 'zstd') return ['zstd', '-d', '-c', '-q'];
  if (c === 'gzip') return ['gzip', '-d', '-c'];
  return undefined;
}

/**
 * The content of `member` in a tar stream, or undefined when the stream has no such member. GNU
 * tar stops reading at the first occurrence: pg_basebackup writes backup_label and
 * tablespace_map first, so for a stored base.tar this reads a few blocks, not the backup.
 */
export async function readTarMember(source: NodeJS.ReadableStream, decompress: readonly string[] | undefined, member: string): Promise<string | undefined> {
  const tar = spawn('tar', ['-xOf', '-', '--occurrence=1', member], { stdio: ['pipe', 'pipe', 'pipe'] });
  tar.stdin.on('error', () => undefined);
  let input: NodeJS.ReadableStream = source;
  let unzip: ReturnType<typeof spawn> | undefined;
  if (decompress !== undefined) {
    const [cmd, ...args] = decompress;
    unzip = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    unzip.stdin!.on('error', () => undefined);
    source.pipe(unzip.stdin!);
    input = unzip.stdout!;
  }
  input.pipe(tar.stdin);
  let out = '';
  let err = '';
  tar.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  tar.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    tar.once('error', reject);
    tar.once('close', resolve);
  });
  // Whatever still feeds tar is not needed any more.
  input.unpipe(tar.stdin);
  unzip?.kill();
  (source as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  if (code === 0) return out;
  if (/Not found in archive/.test(err)) return undefined;
  throw new PgbkError('CATALOG', `reading ${member} from the stored backup failed (tar exit ${String(code)}): ${err.trim()}`);
}

export function storedFileStream(file: string): NodeJS.ReadableStream {
  return createReadStream(file, { highWaterMark: 1 << 20 });
}
