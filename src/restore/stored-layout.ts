/**
 * A stored backup as `restore --remote` sends it, whatever the backup method: the tablespace OIDs,
 * the recorded tablespace locations (read before anything is written), and senders that stream
 * the data directory and each tablespace into `tar -x` on the database host. `ssh` backups are
 * always read through sshBackupTarStream (src/backup-ssh/restore-tree.ts), which owns their layout.
 */

import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { PgbkError } from '../errors.js';
import type { DoneBackup } from '../model/types.js';
import type { Transport } from '../transport/transport.js';
import { decompressorFor, readTarMember, storedFileStream, streamTarInto } from './remote-tar.js';
import { formatTablespaceMap } from './tablespace-map.js';

/** What is stored for the backup: the data root and the tablespaces, by method. */
export interface StoredLayout {
  readonly oids: readonly string[];
  /** The backup's tablespace_map, read locally (undefined: none). */
  readMap(): Promise<string | undefined>;
  sendData(t: Transport, dir: string): Promise<void>;
  sendTablespace(t: Transport, oid: string, dir: string): Promise<void>;
}

async function sendStoredTar(t: Transport, srcDir: string, backup: DoneBackup, name: string, dir: string): Promise<void> {
  const want = backup.checksums[name];
  if (want === undefined) throw new PgbkError('CATALOG', `backup ${backup.id}: ${name} has no recorded checksum`, { server: backup.server });
  const hash = createHash('sha256');
  const src = storedFileStream(path.join(srcDir, name));
  src.on('data', (d) => hash.update(d as Buffer));
  await streamTarInto(t, dir, src, decompressorFor(name), backup.server);
  if (hash.digest('hex') !== want) {
    throw new PgbkError('CATALOG', `backup ${backup.id}: ${name} does not match its recorded sha256`, { server: backup.server, path: path.join(srcDir, name) });
  }
}

export async function storedLayout(srcDir: string, backup: DoneBackup): Promise<StoredLayout> {
  const { server, id } = backup;
  if (backup.method === 'ssh') {
    const { checkSshBackup, readStoredManifest, sshBackupTarStream } = await import('../backup/ssh/restore-tree.js');
    const layout = await checkSshBackup(srcDir, backup);
    const send = async (t: Transport, storedAs: string, dir: string): Promise<void> => {
      const tar = sshBackupTarStream(srcDir, storedAs, server);
      await Promise.all([streamTarInto(t, dir, tar.stream, undefined, server), tar.done]);
    };
    return {
      oids: layout.tablespaceOids,
      // files.json (checksum verified above) records each tablespace's location on the database host.
      readMap: async () => formatTablespaceMap((await readStoredManifest(srcDir)).tablespaces),
      sendData: (t, dir) => send(t, 'data', dir),
      sendTablespace: (t, oid, dir) => send(t, `tablespaces/${oid}`, dir),
    };
  }
  const names = (await readdir(srcDir)).filter((n) => /^(base|\d+)\.tar(\.zst|\.gz)?$/.test(n)).sort();
  const base = names.find((n) => n.startsWith('base.'));
  if (base === undefined) throw new PgbkError('CATALOG', `backup ${id} has no base.tar`, { server, path: srcDir });
  const tsTar = (oid: string): string => names.find((n) => n.startsWith(`${oid}.tar`))!;
  return {
    oids: names.filter((n) => !n.startsWith('base.')).map((n) => n.slice(0, n.indexOf('.'))),
    readMap: () => readTarMember(storedFileStream(path.join(srcDir, base)), decompressorFor(base), 'tablespace_map'),
    sendData: (t, dir) => sendStoredTar(t, srcDir, backup, base, dir),
    sendTablespace: (t, oid, dir) => sendStoredTar(t, srcDir, backup, tsTar(oid), dir),
  };
}
