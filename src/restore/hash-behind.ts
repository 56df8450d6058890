/**
 * The sha256 of a stored file that a program on this host reads itself (the decompressor of a
 * local restore, unpack-file.ts), hashed from the page cache just behind it.
 *
 * The program and this process share one open file description: the program reads it
 * sequentially as its stdin, which moves the description's offset; this process reads with pread
 * (which does not) and never past that offset, read from /proc/self/fdinfo. So every byte is read
 * from the disk once — by the program — and hashed from the pages it has just brought in, even for
 * a file larger than memory (a hasher running ahead would read the file a second time from the
 * disk, and make the two reads seek against each other). Once the program has exited, the rest (if
 * it stopped early) is hashed to the end.
 */
import { readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { sha256Hasher } from '../lib/checksum.js';

const READ_BYTES = 1 << 20;
/** How long to wait for the reader to get ahead again: one decompressor read of ~128 KiB. */
const POLL_MS = 1;

/** The offset of this process's descriptor `fd`'s open file description, or undefined without /proc. */
export function sharedOffset(fd: number): number | undefined {
  try {
    const m = /^pos:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

export interface HashedFile {
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Hash `fh`'s file from offset 0 to its end, never past the shared offset while `readerDone` is
 * pending. `onBytes` sees the running count (progress).
 */
export async function hashBehindReader(fh: FileHandle, readerDone: Promise<unknown>, onBytes?: (bytes: number) => void): Promise<HashedFile> {
  let finished = false;
  void readerDone.finally(() => {
    finished = true;
  });
  const hash = sha256Hasher();
  const buf = Buffer.allocUnsafe(READ_BYTES);
  let bytes = 0;
  for (;;) {
    // Read what the reader has read (all of it once it is gone), in pieces of at most READ_BYTES.
    const limit = finished ? Number.POSITIVE_INFINITY : (sharedOffset(fh.fd) ?? Number.POSITIVE_INFINITY);
    if (limit <= bytes) {
      await sleep(POLL_MS);
      continue;
    }
    const want = Math.min(READ_BYTES, limit - bytes);
    const { bytesRead } = await fh.read(buf, 0, want, bytes);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    bytes += bytesRead;
    onBytes?.(bytes);
  }
  return { sha256: hash.hex(), bytes };
}
