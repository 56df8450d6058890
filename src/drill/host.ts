/**
 * Where a drill runs, as one small interface (like restore's TargetHost): this host, or a drill
 * host over SSH (drill.host). run-drill.ts runs one sequence over it — scratch directory → restore
 * → start → wait for promotion → check → stop → remove — and each implementation does the steps
 * its own way: here with restore's local restore, a spawned postgres and node-postgres
 * (postgres.ts, check.ts); there with `restore --remote`'s restore, a postgres started by a shell
 * and psql over the exec channel (remote.ts).
 */

import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { DrillHost as DrillHostConfig, DrillSettings } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { isInside, resolveReal } from '../restore/target-dir.js';
import type { RecoveryTarget } from '../restore/target.js';
import type { SshTransport } from '../transport/ssh.js';
import { runDrillCheck, type CheckOutcome } from './check.js';
import { startCopy, stopCopy, waitPromoted, type CopyOptions } from './postgres.js';
import { connectDrillHost, remoteScratch, runRemoteCheck, startRemoteCopy, stopRemoteCopy, waitRemotePromoted } from './remote.js';

/** How long restore's in-use mark waits for the server lock (a daemon pass may hold it). */
const MARK_LOCK_TIMEOUT_MS = 5 * 60_000;

export interface DrillCopy {
  readonly pid: number;
  /** Until the copy answers out of recovery; throws when it exits first or `signal` fires. */
  waitPromoted(signal: AbortSignal): Promise<void>;
  check(check: DrillSettings['check'], deadline: number): Promise<CheckOutcome>;
  /** By its PID: fast, then immediate shutdown, then SIGKILL (stop.ts). */
  stop(): Promise<void>;
}

export interface DrillRestoreRequest {
  readonly catalog: string;
  readonly configPath: string | undefined;
  readonly server: string;
  readonly scratch: string;
  readonly target: RecoveryTarget;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

export interface DrillRestored {
  readonly backupId: string;
  readonly targetDir: string;
  /** WAL segments the copy replays when known up front (copied, or counted in the catalog). */
  readonly walSegments: number | undefined;
}

export interface DrillHost {
  /** drill.host's URL; undefined on this host. */
  readonly url: string | undefined;
  /** <scratchDir>/<server>-<id>, created exclusively (0700), real path; refused where the source lives. */
  makeScratch(catalog: string, drill: DrillSettings, server: { name: string; pgdata?: string }, id: string): Promise<string>;
  restore(req: DrillRestoreRequest): Promise<DrillRestored>;
  start(o: CopyOptions): Promise<DrillCopy>;
  removeScratch(dir: string): Promise<void>;
  close(): Promise<void>;
}

const discard = (): Writable => new Writable({ write: (_chunk, _enc, cb) => cb() });

/**
 * The scratch directory for this drill, refused when it overlaps the catalog or the server's own
 * data directory (real paths compared): a drill must never write where the source lives.
 */
async function scratchHere(catalog: string, drill: DrillSettings, server: { name: string; pgdata?: string }, id: string): Promise<string> {
  if (process.getuid?.() === 0) {
    throw new PgbkError('USAGE', 'a restore drill cannot run as root: PostgreSQL refuses to start as root', {
      server: server.name,
      hint: 'let an unprivileged user own the catalog (or set `user:`), so pgbk apply and the daemon run as that user',
    });
  }
  const root = await resolveReal(drill.scratchDir, 'drill.scratchDir');
  const dir = path.join(root, `${server.name}-${id}`);
  const catalogReal = await resolveReal(catalog, 'catalog');
  if (isInside(dir, catalogReal) || isInside(catalogReal, root)) {
    throw new PgbkError('CONFIG', `drill.scratchDir ${drill.scratchDir} (really ${root}) overlaps the catalog ${catalog}`, {
      server: server.name,
      hint: 'put the drill scratch directory outside the catalog',
    });
  }
  if (server.pgdata !== undefined) {
    const pg = await resolveReal(server.pgdata, 'pgdata');
    if (isInside(dir, pg) || isInside(pg, root)) {
      throw new PgbkError('CONFIG', `drill.scratchDir ${drill.scratchDir} (really ${root}) overlaps the server's pgdata ${server.pgdata}`, {
        server: server.name,
      });
    }
  }
  await mkdir(root, { recursive: true, mode: 0o700 });
  // Exclusive: the id is new, so an existing directory is someone else's.
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/** On the backup host: restore under scratchDir, the copy spawned here. */
export function localDrillHost(): DrillHost {
  return {
    url: undefined,
    makeScratch: scratchHere,
    async restore(req) {
      if (req.configPath === undefined) throw new PgbkError('INTERNAL', 'restore drill without a configuration path');
      const { restoreBackup } = await import('../restore/restore.js');
      const summary = await restoreBackup({
        catalog: req.catalog,
        configPath: req.configPath,
        server: req.server,
        requested: undefined,
        targetDir: path.join(req.scratch, 'data'),
        tablespaceDir: path.join(req.scratch, 'tablespaces'),
        target: req.target,
        action: 'promote',
        timeline: { kind: 'latest' },
        force: false,
        archiving: 'off',
        allowNewTablespaces: false,
        lockTimeoutMs: MARK_LOCK_TIMEOUT_MS,
        nodePath: process.execPath,
        cliPath: fileURLToPath(new URL('../cli.js', import.meta.url)),
        log: req.log,
        progressOut: discard(),
        showProgress: false,
        now: new Date(),
        signal: req.signal,
      });
      return { backupId: summary.backupId, targetDir: summary.targetDir, walSegments: summary.wal.segments };
    },
    async start(o) {
      const copy = await startCopy(o);
      return {
        pid: copy.pid,
        waitPromoted: (signal) => waitPromoted(copy, signal),
        check: (check, deadline) => runDrillCheck(copy, check, deadline),
        stop: () => stopCopy(copy),
      };
    },
    removeScratch: (dir) => rm(dir, { recursive: true, force: true, maxRetries: 3 }),
    close: async () => undefined,
  };
}

/** On a drill host over SSH: `restore --remote`'s restore (WAL fetched over SSH or copied up front). */
export async function sshDrillHost(host: DrillHostConfig, server: string): Promise<DrillHost> {
  const t: SshTransport = await connectDrillHost(host, server);
  return {
    url: host.url,
    makeScratch: (_catalog, drill, s, id) => remoteScratch(t, drill, s, id),
    async restore(req) {
      const { restoreRemote } = await import('../restore/remote.js');
      const summary = await restoreRemote({
        catalog: req.catalog,
        server: req.server,
        requested: undefined,
        targetDir: path.posix.join(req.scratch, 'data'),
        target: req.target,
        action: 'promote',
        timeline: { kind: 'latest' },
        remote: {
          user: host.user,
          host: host.host,
          port: host.port,
          ...(host.identityFile === undefined ? {} : { identityFile: host.identityFile }),
          ...(host.knownHosts === undefined ? {} : { knownHosts: host.knownHosts }),
          tablespaceDirs: [path.posix.join(req.scratch, 'tablespaces')],
        },
        lockTimeoutMs: MARK_LOCK_TIMEOUT_MS,
        force: false,
        archiving: 'off',
        allowNewTablespaces: false,
        log: req.log,
        progressOut: discard(),
        showProgress: false,
        now: new Date(),
        signal: req.signal,
      });
      // Copied up front: known. Fetched on demand: not counted here.
      return { backupId: summary.backupId, targetDir: summary.targetDir, walSegments: summary.wal.mode === 'copy' ? summary.wal.files : undefined };
    },
    async start(o) {
      const copy = await startRemoteCopy(t, o);
      return {
        pid: copy.pid,
        waitPromoted: (signal) => waitRemotePromoted(copy, signal),
        check: (check, deadline) => runRemoteCheck(copy, check, deadline),
        stop: () => stopRemoteCopy(copy),
      };
    },
    removeScratch: (dir) => t.remove([dir]),
    close: () => t.close(),
  };
}

export function openDrillHost(drill: DrillSettings, server: string): Promise<DrillHost> {
  return drill.host === undefined ? Promise.resolve(localDrillHost()) : sshDrillHost(drill.host, server);
}
