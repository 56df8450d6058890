/**
 * Fallback when the delta agent cannot run on the database host: remote GNU `tar -c` of the
 * files (names on stdin, NUL-separated, relative to /), parsed here (tar-format.ts), cut into
 * chunks and hashed on the backup host; chunks equal to the previous backup's are still linked,
 * so storage stays incremental, only the transfer is not. Files that vanish or change while read
 * are expected during an online backup (WAL replay repairs them): those warnings are silenced and
 * GNU tar's exit 1 ("some files differ") is accepted; a vanished file is left out.
 */

import { PgbkError } from '../../errors.js';
import { FileChunker } from './chunk-writer.js';
import type { FetchContext } from './fetch-agent.js';
import type { FetchItem, ManifestFile } from './incremental.js';
import { TarFormatError, TarReader } from './tar-format.js';

export async function fetchWithTar(ctx: FetchContext, items: readonly FetchItem[]): Promise<{ files: ManifestFile[]; transferredBytes: number }> {
  const t = ctx.transport;
  if (items.length === 0) return { files: [], transferredBytes: 0 };
  const names = items.map((item) => ctx.remotePathOf(item).replace(/^\/+/, ''));
  const byName = new Map<string, number>();
  names.forEach((n, i) => byName.set(n, i));
  const proc = t.exec([
    'tar',
    '-C',
    '/',
    '-cf',
    '-',
    '--no-recursion',
    '--null',
    '--ignore-failed-read',
    '--warning=no-file-changed',
    '--warning=no-file-removed',
    '--warning=no-file-shrank',
    '-T',
    '-',
  ]);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 16_384) stderr += d;
  });
  proc.stdin.on('error', () => undefined);
  proc.stdin.end(Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8'));

  const reader = new TarReader();
  const files: ManifestFile[] = [];
  let chunker: FileChunker | undefined;
  let transferred = 0;
  let broken: unknown;
  let failed: unknown;
  const apply = async (buf: Buffer): Promise<void> => {
    for (const ev of reader.push(buf)) {
      if (ev.type === 'file') {
        const i = byName.get(ev.name);
        if (i === undefined) throw new TarFormatError(`tar stream holds ${ev.name}, which was not asked for`);
        ctx.writer.begin(items[i]!);
        chunker = new FileChunker(ctx.writer, items[i]!.prev?.hashes, ctx.chunkSize);
      } else if (ev.type === 'data') await chunker!.feed(ev.data);
      else {
        await chunker!.close();
        files.push(await ctx.writer.end());
        chunker = undefined;
      }
    }
  };
  try {
    for await (const buf of proc.stdout) {
      transferred += (buf as Buffer).length;
      if (failed !== undefined) continue; // draining until the killed tar's channel closes
      try {
        await apply(buf as Buffer);
      } catch (err) {
        // Our side gave up (corrupt stream, disk full, …): stop tar, or it waits on a full pipe
        // forever; keep reading, since the channel only closes once its output is consumed.
        failed = err;
        proc.kill();
      }
    }
  } catch (err) {
    broken = err; // the channel broke: judged with the exit status below
  }
  if (failed !== undefined) {
    await proc.done;
    throw failed instanceof TarFormatError
      ? new PgbkError('NETWORK', `copy from ${t.description} interrupted: ${failed.message}`, { server: ctx.server })
      : failed;
  }
  const status = await proc.done;
  if (broken === undefined && status.code !== 0 && status.code !== 1) {
    throw new PgbkError(
      status.code === null ? 'NETWORK' : 'CATALOG',
      `copy from ${t.description} ${status.code === null ? 'interrupted' : `failed (tar exit ${status.code})`}: ${stderr.trim() || 'connection lost'}`,
      { server: ctx.server },
    );
  }
  try {
    if (broken !== undefined) throw broken;
    reader.finish();
  } catch (err) {
    throw new PgbkError(
      'NETWORK',
      `copy from ${t.description} interrupted (${status.code === null ? 'connection lost' : `tar exit ${status.code}`}): ${(err as Error).message}`,
      { server: ctx.server },
    );
  }
  return { files, transferredBytes: transferred };
}
