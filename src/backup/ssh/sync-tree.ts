/**
 * Make a new `ssh` backup durable before its record says the data is complete: every file this
 * backup wrote was flushed as it was written (ChunkWriter), so what is left is every directory of
 * the tree (new names, hard links included) and any file the caller names. Only this
 * backup's own bytes are flushed — a filesystem-wide `sync -f` also had to write back whatever
 * else was dirty on that filesystem (a busy cluster's files, WAL just archived), which made a
 * small incremental backup's time depend on its neighbours. Hard-linked chunks were made durable
 * by the backup that wrote them.
 */

import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { mapLimited } from '../../lib/map-limited.js';

const PARALLEL = 16;

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function directories(root: string): Promise<string[]> {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    for (const e of await readdir(out[i]!, { withFileTypes: true })) if (e.isDirectory()) out.push(path.join(out[i]!, e.name));
  }
  return out;
}

/** fsync `files` (not yet flushed), then every directory below each root and the roots' parent. */
export async function syncBackupTree(backupDir: string, roots: readonly string[], files: readonly string[]): Promise<void> {
  await mapLimited(files, PARALLEL, fsyncPath);
  const dirs: string[] = [];
  for (const r of roots) dirs.push(...(await directories(r)));
  for (const r of roots) {
    for (let d = path.dirname(r); d.startsWith(backupDir) && !dirs.includes(d); d = path.dirname(d)) dirs.push(d);
  }
  await mapLimited(dirs, PARALLEL, fsyncPath);
}
