/**
 * Fetch files through `pgbk backup-agent` on the database host: send it the files and their
 * previous chunk hashes, store what its frames say (new chunk bytes, or "same as before").
 * If the agent cannot be started at all (no output, a numeric non-zero exit: 127 command not
 * found, an older pgbk without the command), the caller falls back to the tar stream; once it has
 * started, any failure — a torn stream after an SSH drop included — fails the backup.
 */

import { PgbkError } from '../../errors.js';
import type { ExecProcess, Transport } from '../../transport/transport.js';
import { AGENT_PROTOCOL_VERSION, FrameDecoder, FrameError, type AgentRequest, type Frame } from './agent-frames.js';
import type { ChunkSink } from './chunk-writer.js';
import { pageLsnsTrusted, type FetchItem, type ManifestFile } from './incremental.js';

export type AgentOutcome =
  | {
      readonly kind: 'done';
      readonly files: readonly ManifestFile[];
      readonly transferredBytes: number;
      readonly lsnSkipped: number;
      readonly walSkipped: number;
    }
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface FetchContext {
  readonly transport: Transport;
  readonly server: string;
  readonly chunkSize: number;
  readonly writer: ChunkSink;
  /** Threads hashing and compressing on the database host. */
  readonly workers?: number;
  /**
   * The previous backup's start LSN when it ran on this backup's timeline, and the server's page
   * size: chunks of relation files whose pages all predate it are not even hashed there.
   */
  readonly previousStart?: { readonly lsn: string; readonly pageSize: number };
  /** Ask the agent for its phase timings (on its stderr). */
  readonly profile?: boolean;
  /** Absolute path of an item on the database host. */
  remotePathOf(item: FetchItem): string;
}

/** Applies frames to the writer, file by file in request order. */
class FrameSink {
  readonly files: ManifestFile[] = [];
  private next = 0;
  private open = false;
  private hello = false;
  done = false;
  lsnSkipped = 0;
  walSkipped = 0;

  constructor(
    private readonly items: readonly FetchItem[],
    private readonly ctx: FetchContext,
    private readonly where: string,
  ) {}

  private begin(): FetchItem {
    const item = this.items[this.next];
    if (item === undefined) throw new FrameError('agent stream corrupt: more files than requested');
    if (!this.open) {
      this.ctx.writer.begin(item);
      this.open = true;
    }
    return item;
  }

  async apply(f: Frame): Promise<void> {
    if (!this.hello && f.type !== 'hello') throw new FrameError('agent stream corrupt: no hello frame');
    switch (f.type) {
      case 'hello':
        if (f.version !== AGENT_PROTOCOL_VERSION)
          throw new PgbkError(
            'CONFIG',
            `the backup agent on ${this.where} speaks protocol ${f.version}, this pgbk ${AGENT_PROTOCOL_VERSION}: install the same pgbk version there`,
            { server: this.ctx.server },
          );
        this.hello = true;
        return;
      case 'chunk':
        // Not hashed again here: SSH's MAC already guards the bytes in transit, and the agent
        // hashed exactly the bytes it sent; a second sha256 pass on this host costs throughput.
        this.begin();
        await this.ctx.writer.data(f.hash.toString('hex'), f.data);
        return;
      case 'compressed':
        this.begin(); // not decompressed here either: the frame carries zstd's own content checksum
        await this.ctx.writer.compressed(f.hash.toString('hex'), f.frame, f.length);
        return;
      case 'same':
        this.begin();
        await this.ctx.writer.same();
        return;
      case 'end': {
        const item = this.begin();
        if (f.missing) this.ctx.writer.missing();
        else {
          const rec = await this.ctx.writer.end();
          if (rec.size !== f.size) throw new FrameError(`agent stream corrupt: ${item.file.path} is ${f.size} bytes by the agent, ${rec.size} by its chunks`);
          this.files.push(rec);
        }
        this.open = false;
        this.next++;
        return;
      }
      case 'error':
        throw new PgbkError('CATALOG', `backup agent on ${this.where} failed: ${f.message}`, { server: this.ctx.server });
      case 'done':
        if (this.next !== this.items.length || this.open) throw new FrameError(`agent stream corrupt: done after ${this.next} of ${this.items.length} files`);
        this.done = true;
        this.lsnSkipped = f.lsnSkipped ?? 0;
        this.walSkipped = f.walSkipped ?? 0;
        return;
      default: {
        const never: never = f;
        throw new FrameError(`unknown frame ${JSON.stringify(never)}`);
      }
    }
  }
}

/** `pgbk backup-agent` running on the database host, waiting for its request on stdin. */
export interface StartedAgent {
  readonly command: readonly string[];
  readonly proc: ExecProcess;
  /** Its stderr so far (the first 16 KiB). */
  stderr(): string;
  /** Not needed after all (nothing to fetch, or the backup failed first): stop it. */
  abandon(): Promise<void>;
}

/**
 * Start the agent before the files are even listed: Node's start, its worker threads and zstd
 * (a few hundred ms on the database host) then overlap pg_backup_start and the listing.
 */
export function startAgent(t: Transport, agentCommand: readonly string[]): StartedAgent {
  const proc = t.exec([...agentCommand, 'backup-agent']);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 16_384) stderr += d;
  });
  proc.stdin.on('error', () => undefined);
  let finished = false;
  void proc.done.then(() => (finished = true));
  return {
    command: agentCommand,
    proc,
    stderr: () => stderr,
    async abandon() {
      if (finished) return;
      proc.stdout.resume(); // its hello frame must not hold the channel open
      proc.stdin.end(); // no request: the agent stops on its own, even where kill() cannot reach it yet
      proc.kill();
      await proc.done;
    },
  };
}

export async function fetchWithAgent(ctx: FetchContext, agent: StartedAgent, items: readonly FetchItem[]): Promise<AgentOutcome> {
  const t = ctx.transport;
  const where = t.description;
  const proc = agent.proc;
  const agentCommand = agent.command;
  const lsn = ctx.previousStart;
  const request: AgentRequest = {
    version: AGENT_PROTOCOL_VERSION,
    chunkSize: ctx.chunkSize,
    ...(ctx.writer.zstdLevel === undefined ? {} : { zstdLevel: ctx.writer.zstdLevel }),
    ...(ctx.workers === undefined ? {} : { workers: ctx.workers }),
    ...(lsn === undefined ? {} : { previousStartLsn: lsn.lsn, pageSize: lsn.pageSize }),
    ...(ctx.profile === true ? { profile: true } : {}),
    files: items.map((item) => ({
      path: ctx.remotePathOf(item),
      ...(item.prev === undefined ? {} : { hashes: item.prev.hashes, previousSize: item.prev.size }),
      ...(lsn !== undefined && item.prev !== undefined && pageLsnsTrusted(item.file.path) ? { lsnPages: true } : {}),
      ...(item.prev !== undefined && item.unchanged !== undefined && item.unchanged.length > 0 ? { unchanged: item.unchanged } : {}),
    })),
  };
  proc.stdin.end(JSON.stringify(request));
  const decoder = new FrameDecoder();
  const sink = new FrameSink(items, ctx, where);
  let streamError: unknown;
  let failed: unknown;
  try {
    for await (const buf of proc.stdout) {
      if (failed !== undefined) continue; // draining until the killed agent's channel closes
      try {
        for (const f of decoder.push(buf as Buffer)) await sink.apply(f);
      } catch (err) {
        // Our side gave up (corrupt frame, disk full, …): stop the agent, or it waits on a full
        // pipe forever; keep reading, since the channel only closes once its output is consumed.
        failed = err;
        proc.kill();
      }
    }
  } catch (err) {
    streamError = err; // the channel broke: judged with the exit status below
  }
  if (failed !== undefined) {
    await proc.done;
    throw failed instanceof FrameError ? new PgbkError('NETWORK', `copy from ${where} interrupted: ${failed.message}`, { server: ctx.server }) : failed;
  }
  const status = await proc.done;
  if (decoder.received === 0 && streamError === undefined && status.code !== null && status.code !== 0) {
    return {
      kind: 'unavailable',
      reason: `\`${[...agentCommand, 'backup-agent'].join(' ')}\` exited ${status.code}: ${agent.stderr().trim().split('\n').slice(-2).join(' ') || 'no message'}`,
    };
  }
  try {
    if (streamError !== undefined) throw new FrameError(`agent stream torn: ${(streamError as Error).message}`);
    decoder.finish();
  } catch (err) {
    const lost = status.code === null ? 'connection lost' : `agent exit ${status.code}`;
    throw new PgbkError(
      'NETWORK',
      `copy from ${where} interrupted (${lost}): ${(err as Error).message}${agent.stderr().trim() ? `; ${agent.stderr().trim()}` : ''}`,
      {
        server: ctx.server,
      },
    );
  }
  if (!sink.done) throw new PgbkError('NETWORK', `copy from ${where} interrupted: no done frame`, { server: ctx.server });
  if (status.code !== 0)
    throw new PgbkError('CATALOG', `backup agent on ${where} exited ${String(status.code)}: ${agent.stderr().trim()}`, { server: ctx.server });
  return { kind: 'done', files: sink.files, transferredBytes: decoder.received, lsnSkipped: sink.lsnSkipped, walSkipped: sink.walSkipped };
}
