/**
 * unpackInto for a compressed stored file on this host, with Node out of the data path: one `tee`
 * reads the file (once) and hands the same bytes to the decompressor, which feeds `tar -x`, and to
 * `openssl dgst -sha256`, whose digest is compared with backup.json's afterwards — the same
 * guarantee as Node's single pass (the bytes hashed are the bytes unpacked), without the main
 * thread reading, hashing and writing every piece: on the 2 cores of a -s 50 restore that cost
 * ~70 ms of Node's CPU and made zstd and tar slower beside it (Session 21, restore21's perf sched).
 *
 * The file is opened here and given to the script as its stdin (tee reads it): Node keeps the same
 * open file description, so /proc/self/fdinfo tells how far tee has read (progress), and a missing
 * or unreadable file fails before anything starts. Each program's status comes back on the
 * script's fd 3 with the digest; tar's member list on stdout, as before. Used only when openssl is
 * installed; otherwise unpack.ts's Node pass.
 *
 * Measured on pgbench -s 50 beside pgBackRest (paired with the Node pass in the same rounds): with
 * tee's two outputs at the default 64 KiB pipe, no gain (1.03×); with both pipes at 1 MiB (perl, as
 * for tar's input), 0.92× and 0.95× of the Node pass' time (7 and 9 rounds). Reading the file twice
 * (zstd and openssl each on its own) measured a little faster still (restore21), but the bytes
 * hashed would then not be the bytes unpacked: pg_basebackup's zstd frames carry no checksum.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { PgbkError } from '../errors.js';
import { findExecutable, pathDirs } from '../lib/find-executable.js';
import { EarlyFlush, writeBackHelps } from './early-flush.js';
import { digestMismatch, PIPE_BYTES, RestoreAborted, TAR, type Unpacked, type UnpackOptions } from './unpack.js';

/**
 * `sh -c FILE_PIPELINE sh DIR DECOMPRESSOR…`, stdin the stored file, fd 3 a pipe to Node. tee
 * writes its input to stdout (the decompressor) and to /dev/fd/5, a pipe to openssl; tar's list
 * goes to the script's stdout (fd 7 inside). Every stage reports `NAME STATUS` on fd 4; the digest
 * and the statuses end on fd 3. The 1 MiB pipe between the decompressor and tar as in unpack.ts.
 */
const FILE_PIPELINE = [
  'd=$1; shift',
  'exec 6>&3 7>&1',
  'st=$( { { { tee /dev/fd/5 3>&- 4>&- 6>&- 7>&-; echo "tee $?" >&4; }' +
    ` | { perl -e 'fcntl(STDIN, 1031, ${PIPE_BYTES})' 2>/dev/null 3>&- 4>&- 5>&- 6>&- 7>&-; "$@" 3>&- 4>&- 5>&- 6>&- 7>&-; echo "dec $?" >&4; }` +
    ` | { perl -e 'fcntl(STDIN, 1031, ${PIPE_BYTES})' 2>/dev/null 3>&- 4>&- 5>&- 6>&- 7>&-; ${TAR.join(' ')} -f - -C "$d" >&7 3>&- 5>&- 6>&- 7>&-; echo "tar $?" >&4; }; } 5>&1 1>&4` +
    ` | { perl -e 'fcntl(STDIN, 1031, ${PIPE_BYTES})' 2>/dev/null 3>&- 4>&- 6>&- 7>&-; openssl dgst -sha256 -r >&6 3>&- 4>&- 6>&- 7>&-; echo "sha $?" >&4; }; } 4>&1 )`,
  'printf "%s\\n" "$st" >&6',
].join('\n');

let opensslPath: string | null | undefined;

/** openssl on PATH (looked up once), or null; null too without /dev/fd (tee writes to /dev/fd/5). */
export function findOpenssl(): string | null {
  if (opensslPath !== undefined) return opensslPath;
  opensslPath = null;
  if (!existsSync('/dev/fd/0')) return opensslPath;
  opensslPath = findExecutable('openssl', pathDirs());
  return opensslPath;
}

/** What fd 3 carried: the digest line and each stage's status. */
export function parseReport(text: string): { readonly sha256: string | undefined; readonly status: ReadonlyMap<string, number> } {
  let sha256: string | undefined;
  const status = new Map<string, number>();
  for (const line of text.split('\n')) {
    const digest = /^([0-9a-f]{64}) /.exec(line);
    if (digest !== null) sha256 = digest[1];
    const st = /^(tee|dec|tar|sha) (\d+)$/.exec(line);
    if (st !== null) status.set(st[1]!, Number(st[2]));
  }
  return { sha256, status };
}

/** Bytes tee has read of the shared file description (its position), or undefined. */
async function readPosition(fd: number): Promise<number | undefined> {
  const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
  const m = /^pos:\s*(\d+)/m.exec(info);
  return m === null ? undefined : Number(m[1]);
}

export async function unpackFile(
  opts: Omit<UnpackOptions, 'source' | 'decompress'> & { readonly sourceFile: string; readonly decompress: readonly string[] },
): Promise<Unpacked> {
  const { dir, what, server, decompress, sourceFile } = opts;
  const aborted = (): boolean => opts.signal?.aborted === true;
  if (aborted()) throw new RestoreAborted(`while unpacking ${what}`, server, what);
  const flushEarly = await writeBackHelps(dir);
  const file = await open(sourceFile, 'r').catch((err: unknown) => {
    throw new PgbkError('CATALOG', `cannot read ${what}: ${(err as Error).message}`, { server, path: what, cause: err });
  });
  const size = (await file.stat()).size;
  const child = spawn('sh', ['-c', FILE_PIPELINE, 'sh', dir, ...decompress], { stdio: [file.fd, 'pipe', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  const stopGroup = (): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // gone already
    }
  };
  opts.signal?.addEventListener('abort', stopGroup, { once: true });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  let report = '';
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8');
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: string) => {
    if (report.length < 8192) report += d;
  });
  let files = 0;
  let storedBytes = 0;
  const flush = flushEarly ? new EarlyFlush(dir) : undefined;
  child.stdout!.on('data', (d: Buffer) => {
    flush?.output(d);
    for (const byte of d) if (byte === 10) files++;
    opts.onProgress?.(storedBytes, files);
  });
  const progress =
    opts.onProgress === undefined
      ? undefined
      : setInterval(() => {
          void readPosition(file.fd).then((pos) => {
            if (pos !== undefined) storedBytes = pos;
            opts.onProgress?.(storedBytes, files);
          });
        }, 250);
  const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  if (progress !== undefined) clearInterval(progress);
  flush?.stop();
  opts.signal?.removeEventListener('abort', stopGroup);
  await file.close();
  if (aborted()) throw new RestoreAborted(`while unpacking ${what}`, server, what);
  if (exit.error !== undefined) throw new PgbkError('INTERNAL', `cannot run sh to unpack ${what}: ${exit.error.message}`, { server, path: what });
  const { sha256, status } = parseReport(report);
  const err = stderr.trim();
  const tar = status.get('tar');
  const dec = status.get('dec');
  const tee = status.get('tee');
  // Whoever failed first is the news: a stage whose reader died gets SIGPIPE (141), not its fault —
  // a failed read ends the decompressor's input, a failed decompressor tar's, a failed tar both.
  const failedOwn = (st: number | undefined): boolean => st !== 0 && st !== 141;
  if (failedOwn(tee)) throw new PgbkError('CATALOG', `cannot read ${what}: ${err || `tee exit ${String(tee)}`}`, { server, path: what });
  if (failedOwn(dec)) {
    throw new PgbkError('CATALOG', `${decompress[0]} could not decompress ${what}: ${err || `exit ${String(dec)}`}`, {
      server,
      path: what,
      hint: 'the stored backup file is damaged',
    });
  }
  if (tar !== 0) {
    throw new PgbkError('CATALOG', `tar could not extract ${what}: ${err || `exit ${String(tar ?? exit.code)}`}`, { server, path: what });
  }
  if (tee !== 0 || dec !== 0)
    throw new PgbkError('CATALOG', `unpacking ${what} stopped early: ${err || `tee ${String(tee)}, decompressor ${String(dec)}`}`, { server, path: what });
  if (status.get('sha') !== 0 || sha256 === undefined) {
    throw new PgbkError('INTERNAL', `openssl could not hash ${what}: ${err || `exit ${String(status.get('sha'))}`}`, { server, path: what });
  }
  if (opts.expectedSha256 !== undefined && sha256 !== opts.expectedSha256) throw digestMismatch(what, server, opts.expectedSha256, sha256);
  opts.onProgress?.(size, files);
  return { storedBytes: size, files, sha256 };
}
