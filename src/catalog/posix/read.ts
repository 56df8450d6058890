/** Reads of the posix driver. A key that is missing, or is a directory, is no object: undefined. */

import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ObjectInfo, ReadRange } from '../repository.js';
import { readChecksums } from './checksums.js';
import { errnoOf, failure, isAbsent } from './fs-util.js';

function isNoObject(err: unknown): boolean {
  return isAbsent(err) || errnoOf(err) === 'EISDIR';
}

export async function getFile(file: string, into?: Buffer): Promise<Buffer | undefined> {
  try {
    if (into === undefined) return await readFile(file);
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) return undefined;
      if (st.size > into.length) return await fh.readFile();
      // Stored objects are replaced by rename, never rewritten: the open file keeps its size.
      let at = 0;
      while (at < st.size) {
        const { bytesRead } = await fh.read(into, at, st.size - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return into.subarray(0, at);
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (isNoObject(err)) return undefined;
    throw failure('read', file, err);
  }
}

export async function readFileRange(file: string, range: ReadRange = {}): Promise<Readable | undefined> {
  const offset = range.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || (range.length !== undefined && !(Number.isSafeInteger(range.length) && range.length >= 0))) {
    throw failure('read', file, new Error(`invalid range ${JSON.stringify(range)}`));
  }
  try {
    const fh = await open(file, 'r');
    try {
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        return undefined;
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    if (range.length === 0) {
      await fh.close();
      return Readable.from([]);
    }
    // createReadStream's end is inclusive; it closes the handle when done or destroyed.
    const end = range.length === undefined ? undefined : offset + range.length - 1;
    return fh.createReadStream(end === undefined ? { start: offset } : { start: offset, end });
  } catch (err) {
    if (isNoObject(err)) return undefined;
    throw failure('read', file, err);
  }
}

export async function statFile(file: string): Promise<ObjectInfo | undefined> {
  try {
    const st = await stat(file);
    if (!st.isFile()) return undefined;
    const sha256 = (await readChecksums(path.dirname(file))).get(path.basename(file));
    return sha256 === undefined ? { size: st.size, mtime: st.mtime } : { size: st.size, mtime: st.mtime, sha256 };
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw failure('stat', file, err);
  }
}
