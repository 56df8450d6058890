/**
 * The posix driver's record of the sha256 given to putIfAbsent (ObjectInfo.sha256): the
 * SHA256SUMS file of each WAL directory, "<sha256 hex>  <stored file name>" per line, in
 * sha256sum(1) format, over the STORED file's bytes. Archivers only append (O_APPEND writes of one
 * short line do not interleave), so concurrent writers need no lock; pruning rewrites it.
 */

import { open, readFile, rename, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, tempPathFor } from '../../lib/atomic.js';

/** Beside the objects of a directory; never listed, and no key may be called that (repository-key.ts). */
export const CHECKSUMS_FILE = 'SHA256SUMS';

const LINE_RE = /^([0-9a-f]{64}) [ *](.+)$/;

function parse(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = LINE_RE.exec(line);
    if (m !== null && m[1] !== undefined && m[2] !== undefined) sums.set(m[2], m[1]);
  }
  return sums;
}

/** Stored file name → sha256 of its uncompressed content; empty when there is no SHA256SUMS. */
export async function readChecksums(dir: string): Promise<Map<string, string>> {
  try {
    return parse(await readFile(path.join(dir, CHECKSUMS_FILE), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
}

/**
 * Append one line durably (O_APPEND + fsync; the directory too when the file is new). A prune may
 * rename a rewritten SHA256SUMS over the one we opened after it copied the old file's late lines
 * (removeChecksums): the line would then sit only in the unlinked old inode. So after the fsync
 * we check that the path still names the file we wrote, and append again to the new one if not
 * (a duplicate identical line is harmless to every reader).
 */
export async function appendChecksum(dir: string, storedName: string, sha256: string): Promise<void> {
  const file = path.join(dir, CHECKSUMS_FILE);
  for (;;) {
    const fh = await open(file, 'a+', 0o640);
    let isNew: boolean;
    let ino: number;
    try {
      const st = await fh.stat();
      isNew = st.size === 0;
      ino = st.ino;
      // A fragment without its newline (an append cut short when the disk filled up) must not
      // swallow this line: start on a fresh line then (a blank line is ignored by readers).
      const last = Buffer.alloc(1);
      if (st.size > 0) await fh.read(last, 0, 1, st.size - 1);
      const line = Buffer.from(`${st.size > 0 && last[0] !== 0x0a ? '\n' : ''}${sha256}  ${storedName}\n`);
      const { bytesWritten } = await fh.write(line);
      if (bytesWritten !== line.length) {
        throw Object.assign(new Error(`short write to ${file} (${bytesWritten} of ${line.length} bytes)`), { code: 'ENOSPC', path: file });
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (isNew) await fsyncDir(dir);
    const now = await stat(file).catch(() => undefined);
    if (now !== undefined && now.ino === ino) return;
  }
}

function keepLines(text: string, removed: ReadonlySet<string>): string {
  return text
    .split('\n')
    .filter((line) => {
      const m = LINE_RE.exec(line);
      return m !== null && m[2] !== undefined && !removed.has(m[2]);
    })
    .map((line) => `${line}\n`)
    .join('');
}

/**
 * Rewrite SHA256SUMS without the lines of `removed` stored names, atomically. Returns how many
 * lines remain. A line an archiver appends to the old file while we rewrite is carried over: we
 * keep the old file open and copy whatever grew past what we read once the new file is in place.
 */
export async function removeChecksums(dir: string, removed: ReadonlySet<string>): Promise<number> {
  const file = path.join(dir, CHECKSUMS_FILE);
  let old: FileHandle;
  try {
    old = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  try {
    const before = await old.readFile();
    const kept = keepLines(before.toString('utf8'), removed);
    const tmp = tempPathFor(file);
    const fh = await open(tmp, 'wx', 0o640);
    try {
      await fh.writeFile(kept);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await fsyncDir(dir);
    const size = (await old.stat()).size;
    let late = '';
    if (size > before.length) {
      const rest = Buffer.alloc(size - before.length);
      await old.read(rest, 0, rest.length, before.length);
      late = keepLines(rest.toString('utf8'), removed);
      if (late.length > 0) {
        const fa = await open(file, 'a');
        try {
          await fa.write(late);
          await fa.sync();
        } finally {
          await fa.close();
        }
      }
    }
    return parse(kept + late).size;
  } finally {
    await old.close();
  }
}
