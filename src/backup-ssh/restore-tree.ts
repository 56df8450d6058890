/**
 * Restoring an `ssh` backup: its data/ tree (and tablespaces/<oid>/) is copied as it is — GNU
 * `cp -a`, owners, modes and times kept — after the recorded checksums of files.json and
 * backup_label are checked. Used by src/restore/restore.ts for backups whose method is ssh.
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import type { BackupRecord } from '../plan/types.js';
import { parseManifest } from './incremental.js';

const MANIFEST_FILE = 'files.json';

export interface SshBackupLayout {
  readonly tablespaceOids: readonly string[];
  readonly bytes: number;
  readonly files: number;
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** Refuse a damaged `ssh` backup before anything is written. */
export async function checkSshBackup(srcDir: string, backup: BackupRecord): Promise<SshBackupLayout> {
  const server = backup.server;
  for (const name of [MANIFEST_FILE, 'data/backup_label']) {
    const want = backup.checksums?.[name];
    const file = path.join(srcDir, name);
    const got = await sha256Of(file).catch(() => 'unreadable');
    if (want === undefined || got !== want) {
      throw new PgbkError('CATALOG', `backup ${backup.id}: ${name} is missing or does not match its recorded sha256`, { server, path: file });
    }
  }
  const manifest = parseManifest(await readFile(path.join(srcDir, MANIFEST_FILE), 'utf8'));
  const stored = await readdir(path.join(srcDir, 'tablespaces')).catch(() => [] as string[]);
  const oids = manifest.tablespaces.map((t) => t.oid).sort();
  for (const oid of oids) {
    if (!stored.includes(oid)) throw new PgbkError('CATALOG', `backup ${backup.id}: tablespace ${oid} is missing`, { server, path: path.join(srcDir, 'tablespaces') });
  }
  return { tablespaceOids: oids, bytes: manifest.files.reduce((a, f) => a + f[1], 0), files: manifest.files.length };
}

/** cp -a SRC/. DEST (DEST exists and is empty). */
export function copyTreeInto(src: string, dest: string, server: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('cp', ['-a', '--', `${src}/.`, dest], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => reject(new PgbkError('INTERNAL', `cannot run cp: ${e.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new PgbkError('CATALOG', `copying ${src} to ${dest} failed: ${err.trim()}`, { server, path: dest }));
    });
  });
}

/**
 * A tar stream of one stored root of an `ssh` backup ("data" or "tablespaces/<oid>"), paths
 * relative to that root, ready for `tar -x` on the target host. `done` settles once the stream has
 * ended: it rejects when the stored tree could not be read completely.
 */
export function sshBackupTarStream(srcDir: string, storedAs: string, server: string): { readonly stream: NodeJS.ReadableStream; readonly done: Promise<void> } {
  const root = path.join(srcDir, storedAs);
  const tar = spawn('tar', ['-C', root, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  tar.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<void>((resolve, reject) => {
    tar.once('error', (e) => reject(new PgbkError('INTERNAL', `cannot run tar: ${e.message}`)));
    tar.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new PgbkError('CATALOG', `reading ${root} failed (tar exit ${String(code)}): ${err.trim()}`, { server, path: root }));
    });
  });
  return { stream: tar.stdout, done };
}
