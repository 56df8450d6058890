/**
 * Stream files from the database host into a local directory: remote `tar -c` fed the file names
 * on stdin (NUL-separated), its output piped into a local `tar -x`. One exec channel per root; GNU
 * tar on both ends (argument arrays locally, quoted argv remotely). Files that vanish or change
 * while read are expected during an online backup (WAL replay repairs them): those warnings are
 * silenced, and GNU tar's exit 1 ("some files differ") is accepted.
 */

import { spawn } from 'node:child_process';
import { PgbkError } from '../errors.js';
import type { Transport } from '../transport/transport.js';

export interface CopyResult {
  readonly bytes: number;
}

export async function copyFiles(transport: Transport, remoteRoot: string, rels: readonly string[], localDir: string, server: string): Promise<CopyResult> {
  if (rels.length === 0) return { bytes: 0 };
  const remote = transport.exec([
    'tar', '-C', remoteRoot, '-cf', '-', '--no-recursion', '--null', '--ignore-failed-read',
    '--warning=no-file-changed', '--warning=no-file-removed', '--warning=no-file-shrank', '-T', '-',
  ]);
  const local = spawn('tar', ['-C', localDir, '-xf', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let localErr = '';
  local.stderr.setEncoding('utf8').on('data', (d: string) => (localErr += d));
  let remoteErr = '';
  remote.stderr.setEncoding('utf8');
  remote.stderr.on('data', (d: string) => {
    if (remoteErr.length < 16_384) remoteErr += d;
  });
  let bytes = 0;
  remote.stdout.on('data', (d: Buffer) => (bytes += d.length));
  remote.stdout.pipe(local.stdin);
  local.stdin.on('error', () => undefined);
  remote.stdin.on('error', () => undefined);
  const localDone = new Promise<{ code: number | null; error?: string }>((resolve) => {
    local.once('error', (err) => resolve({ code: null, error: err.message }));
    local.once('close', (code) => resolve({ code }));
  });
  remote.stdin.end(Buffer.from(rels.map((r) => `${r}\0`).join(''), 'utf8'));
  const rs = await remote.done;
  if (rs.code !== 0 && rs.code !== 1) {
    if (local.exitCode === null) local.kill('SIGTERM');
    await localDone;
    const lost = rs.code === null;
    throw new PgbkError(lost ? 'NETWORK' : 'CATALOG', `copy from ${transport.description}:${remoteRoot} ${lost ? 'interrupted' : `failed (tar exit ${rs.code})`}: ${remoteErr.trim() || 'connection lost'}`, { server });
  }
  const ls = await localDone;
  if (ls.code !== 0) {
    throw new PgbkError('CATALOG', `local tar -x into ${localDir} failed (exit ${String(ls.code)}): ${(ls.error ?? localErr).trim()}`, { server, path: localDir });
  }
  return { bytes };
}
