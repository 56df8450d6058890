/**
 * Executor of `restore-drill` (issue 14): prove that the newest backup (or a random point in the
 * recoverable window) restores and opens, and measure how long that takes.
 *
 *   record RUNNING → restore (src/restore/, which marks the backup in use so retention keeps it)
 *   into <scratchDir>/<server>-<id>/ → start PostgreSQL there (archiving off, WAL through pgbk
 *   wal-fetch) → wait for promotion → check → stop it by PID → remove the scratch copy → record
 *   PASSED or FAILED with the measurements.
 *
 * It is a reader of everything but its own record: the source cluster is never contacted, the
 * restored copy never archives, tablespaces are restored under the scratch directory (a WAL that
 * creates one at the source's path is refused by restore), and the only catalog object written
 * is <server>/drills/<id>.json (plus restore's in-use mark on the backup while it reads it).
 * It runs after apply has released the server lock, so WAL archiving goes on meanwhile.
 */

import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ActionResult, ExecContext } from '../apply/context.js';
import { newBackupId, readBackup } from '../catalog/backups.js';
import { effectiveDrill, readDrills, writeDrillRecord } from '../catalog/drills.js';
import { readIdentity } from '../catalog/identity.js';
import type { DrillHost, DrillSettings } from '../config/resolved.js';
import { formatDuration } from '../config/duration.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { processIdentity } from '../lib/process-identity.js';
import { setLongTimeout } from '../lib/timer.js';
import type { DrillRecord, RestoreDrillAction } from '../model/types.js';
import { parseLsn } from '../pg/lsn.js';
import { isInside, resolveReal } from '../restore/target-dir.js';
import type { RecoveryTarget } from '../restore/target.js';
import type { SshTransport } from '../transport/ssh.js';
import { runDrillCheck } from './check.js';
import { startCopy, stopCopy, waitPromoted, type RunningCopy } from './postgres.js';
import { connectDrillHost, type RemoteCopy, remoteScratch, runRemoteCheck, startRemoteCopy, stopRemoteCopy, waitRemotePromoted } from './remote.js';

/** How long restore's in-use mark waits for the server lock (a daemon pass may hold it). */
const MARK_LOCK_TIMEOUT_MS = 5 * 60_000;

function message(err: unknown): string {
  const e = toPgbkError(err);
  return e.message + (e.hint ? ` (hint: ${e.hint})` : '');
}

const round1 = (s: number): number => Math.round(s * 10) / 10;

/**
 * The scratch directory for this drill, refused when it overlaps the catalog or the server's own
 * data directory (real paths compared): a drill must never write where the source lives.
 */
async function scratchFor(catalog: string, drill: DrillSettings, server: { name: string; pgdata?: string }, id: string): Promise<string> {
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

export async function executeRestoreDrill(ctx: ExecContext, action: RestoreDrillAction): Promise<ActionResult> {
  const server = ctx.server;
  const drill = server.drill;
  if (drill === undefined) return { action, outcome: 'skipped', detail: 'no drill is configured for this server any more' };
  // A repeated or saved plan: the slot may have been drilled meanwhile.
  const thisHost = os.hostname();
  const done = (await readDrills(ctx.catalog, server.name)).map((d) => effectiveDrill(d, thisHost));
  if (done.some((d) => Date.parse(d.slot) >= Date.parse(action.slot))) {
    return { action, outcome: 'skipped', detail: `a drill for slot ${action.slot} was already run` };
  }

  const started = Date.now();
  const id = newBackupId(new Date(started));
  let record: DrillRecord = {
    formatVersion: 1,
    id,
    server: server.name,
    status: 'RUNNING',
    slot: action.slot,
    startedAt: new Date(started).toISOString(),
    owner: { ...processIdentity(), host: thisHost, startedAt: new Date(started).toISOString() },
    target: action.targetLsn === undefined ? 'latest' : `lsn ${action.targetLsn}`,
    ...(action.targetLsn === undefined ? {} : { targetLsn: action.targetLsn }),
    ...(drill.host === undefined ? {} : { host: drill.host.url }),
    errors: [],
  };
  await writeDrillRecord(ctx.catalog, record);
  ctx.log(
    `restore drill ${id} of ${server.name}${drill.host === undefined ? '' : ` on ${drill.host.url}`}: target ${record.target}, time limit ${formatDuration(drill.timeLimitSeconds)}`,
  );

  const deadline = started + drill.timeLimitSeconds * 1000;
  const timeLimit = new AbortController();
  const timer = setLongTimeout(() => timeLimit.abort(), drill.timeLimitSeconds * 1000, { unref: true });
  const signal = ctx.signal === undefined ? timeLimit.signal : AbortSignal.any([timeLimit.signal, ctx.signal]);
  // restoreBackup gets only the interrupt signal: the time limit is checked when it returns. Its
  // abort path kills tar mid-stream, which the drill must not depend on for its record to be written.
  const interrupt = ctx.signal;
  const errors: string[] = [];
  const step = {
    thisHost,
    deadline,
    signal,
    interrupt,
    timeLimit: timeLimit.signal,
    errors,
    // Stopped before the copy is stopped, as the record's timedOut is about restore, replay and check.
    stopClock: () => timer.clear(),
    get: () => record,
    set: async (r: DrillRecord, write = true): Promise<void> => {
      record = r;
      if (write) await writeDrillRecord(ctx.catalog, r);
    },
  };
  try {
    if (drill.host === undefined) await drillHere(ctx, drill, id, action, step);
    else await drillOnHost(ctx, drill, drill.host, id, action, step);
  } finally {
    timer.clear();
  }
  const { owner: _owner, ...rest } = record;
  record = {
    ...rest,
    status: errors.length === 0 ? 'PASSED' : 'FAILED',
    finishedAt: new Date().toISOString(),
    ...(timeLimit.signal.aborted ? { timedOut: true } : {}),
    errors,
  };
  await writeDrillRecord(ctx.catalog, record);
  const measured =
    record.restoreSeconds === undefined
      ? ''
      : `; restore ${record.restoreSeconds}s${record.replaySeconds === undefined ? '' : `, replay ${record.replaySeconds}s`}`;
  const from = (record.backupId === undefined ? '' : ` from backup ${record.backupId}`) + (record.host === undefined ? '' : ` on ${record.host}`);
  if (record.status === 'PASSED') {
    return { action, outcome: 'done', detail: `drill ${id} PASSED${from}${measured}; ${record.check?.detail ?? ''}` };
  }
  return { action, outcome: 'failed', detail: `drill ${id} FAILED${from}${measured}: ${errors.join('; ')}` };
}

/** What a drill's steps share with executeRestoreDrill: its record, limits and error list. */
interface DrillStep {
  readonly thisHost: string;
  readonly deadline: number;
  /** The time limit or an interrupt. */
  readonly signal: AbortSignal;
  /** The interrupt alone (restore's abort path kills tar mid-stream: the record must still be written). */
  readonly interrupt: AbortSignal | undefined;
  readonly timeLimit: AbortSignal;
  readonly errors: string[];
  stopClock(): void;
  get(): DrillRecord;
  set(r: DrillRecord, write?: boolean): Promise<void>;
}

function failWith(step: DrillStep, drill: DrillSettings, err: unknown): void {
  step.errors.push(step.timeLimit.aborted ? `time limit ${formatDuration(drill.timeLimitSeconds)} reached: ${message(err)}` : message(err));
}

function recoveryTarget(action: RestoreDrillAction): RecoveryTarget {
  return action.targetLsn === undefined ? { kind: 'latest' } : { kind: 'lsn', lsn: parseLsn(action.targetLsn) };
}

/** On the backup host: restore under scratchDir, start the copy here, check, stop, remove. */
async function drillHere(ctx: ExecContext, drill: DrillSettings, id: string, action: RestoreDrillAction, step: DrillStep): Promise<void> {
  const server = ctx.server;
  const { errors, signal, interrupt, timeLimit, deadline } = step;
  let scratch: string | undefined;
  let copy: RunningCopy | undefined;
  try {
    if (process.getuid?.() === 0) {
      throw new PgbkError('USAGE', 'a restore drill cannot run as root: PostgreSQL refuses to start as root', {
        server: server.name,
        hint: 'let an unprivileged user own the catalog (or set `user:`), so pgbk apply and the daemon run as that user',
      });
    }
    scratch = await scratchFor(ctx.catalog, drill, server, id);
    if (ctx.configPath === undefined) throw new PgbkError('INTERNAL', 'restore drill without a configuration path');
    const { restoreBackup } = await import('../restore/restore.js');
    const restoreStart = Date.now();
    const summary = await restoreBackup({
      catalog: ctx.catalog,
      configPath: ctx.configPath,
      server: server.name,
      requested: undefined,
      targetDir: path.join(scratch, 'data'),
      tablespaceDir: path.join(scratch, 'tablespaces'),
      target: recoveryTarget(action),
      action: 'promote',
      timeline: { kind: 'latest' },
      force: false,
      noArchive: true,
      allowNewTablespaces: false,
      lockTimeoutMs: MARK_LOCK_TIMEOUT_MS,
      nodePath: process.execPath,
      cliPath: fileURLToPath(new URL('../cli.js', import.meta.url)),
      log: (line) => ctx.log(`drill ${id}: ${line}`),
      progressOut: new Writable({ write: (_chunk, _enc, cb) => cb() }),
      showProgress: false,
      now: new Date(),
      ...(interrupt === undefined ? {} : { signal: interrupt }),
    });
    const restoreSeconds = round1((Date.now() - restoreStart) / 1000);
    const identity = await readIdentity(ctx.catalog, server.name);
    const backup = await readBackup(ctx.catalog, server.name, summary.backupId);
    await step.set({
      ...step.get(),
      backupId: summary.backupId,
      restoreSeconds,
      ...(backup.status === 'DONE' ? { dataBytes: backup.sizes.data } : {}),
      walBytes: summary.wal.segments * (identity?.walSegmentSize ?? 16 * 1024 * 1024),
    });
    if (signal.aborted) throw new PgbkError('PG', 'the time limit was reached during the restore');

    const replayStart = Date.now();
    copy = await startCopy({
      pgdata: summary.targetDir,
      runDir: scratch,
      pgVersion: identity?.pgVersion ?? backup.pgVersion,
      user: drill.check.user,
      settings: drill.settings,
    });
    await waitPromoted(copy, signal);
    await step.set({ ...step.get(), replaySeconds: round1((Date.now() - replayStart) / 1000) }, false);
    const check = await runDrillCheck(copy, drill.check, deadline);
    await step.set({ ...step.get(), check }, false);
    if (!check.ok) errors.push(check.detail);
    if (timeLimit.aborted) throw new PgbkError('PG', 'the time limit was reached during the check');
  } catch (err) {
    failWith(step, drill, err);
  } finally {
    step.stopClock();
    if (copy !== undefined) await stopCopy(copy);
    if (scratch !== undefined) {
      await rm(scratch, { recursive: true, force: true, maxRetries: 3 }).catch((err: unknown) => {
        errors.push(`cannot remove the scratch copy ${scratch}: ${message(err)}`);
      });
    }
  }
}

/**
 * On a drill host over SSH (remote.ts): the same steps, the restore being `pgbk restore --remote`'s
 * (WAL fetched over SSH as the backup's archive_command says, or copied up front), archiving off.
 */
async function drillOnHost(ctx: ExecContext, drill: DrillSettings, host: DrillHost, id: string, action: RestoreDrillAction, step: DrillStep): Promise<void> {
  const server = ctx.server;
  const { errors, signal, interrupt, timeLimit, deadline } = step;
  let t: SshTransport | undefined;
  let scratch: string | undefined;
  let copy: RemoteCopy | undefined;
  try {
    t = await connectDrillHost(host, server.name);
    scratch = await remoteScratch(t, drill, server, id);
    const { restoreRemote } = await import('../restore/remote.js');
    const restoreStart = Date.now();
    const summary = await restoreRemote({
      catalog: ctx.catalog,
      server: server.name,
      requested: undefined,
      targetDir: path.posix.join(scratch, 'data'),
      target: recoveryTarget(action),
      action: 'promote',
      timeline: { kind: 'latest' },
      remote: {
        user: host.user,
        host: host.host,
        port: host.port,
        ...(host.identityFile === undefined ? {} : { identityFile: host.identityFile }),
        ...(host.knownHosts === undefined ? {} : { knownHosts: host.knownHosts }),
        tablespaceDirs: [path.posix.join(scratch, 'tablespaces')],
      },
      lockTimeoutMs: MARK_LOCK_TIMEOUT_MS,
      force: false,
      noArchive: true,
      allowNewTablespaces: false,
      log: (line) => ctx.log(`drill ${id}: ${line}`),
      progressOut: new Writable({ write: (_chunk, _enc, cb) => cb() }),
      showProgress: false,
      now: new Date(),
      ...(interrupt === undefined ? {} : { signal: interrupt }),
    });
    const restoreSeconds = round1((Date.now() - restoreStart) / 1000);
    const identity = await readIdentity(ctx.catalog, server.name);
    const backup = await readBackup(ctx.catalog, server.name, summary.backupId);
    await step.set({
      ...step.get(),
      backupId: summary.backupId,
      restoreSeconds,
      ...(backup.status === 'DONE' ? { dataBytes: backup.sizes.data } : {}),
      // Copied up front: known. Fetched on demand: not counted here.
      ...(summary.wal.mode === 'copy' ? { walBytes: summary.wal.files * (identity?.walSegmentSize ?? 16 * 1024 * 1024) } : {}),
    });
    if (signal.aborted) throw new PgbkError('PG', 'the time limit was reached during the restore');

    const replayStart = Date.now();
    copy = await startRemoteCopy(t, {
      pgdata: summary.targetDir,
      runDir: scratch,
      pgVersion: identity?.pgVersion ?? backup.pgVersion,
      user: drill.check.user,
      settings: drill.settings,
    });
    await waitRemotePromoted(copy, signal);
    await step.set({ ...step.get(), replaySeconds: round1((Date.now() - replayStart) / 1000) }, false);
    const check = await runRemoteCheck(copy, drill.check, deadline);
    await step.set({ ...step.get(), check }, false);
    if (!check.ok) errors.push(check.detail);
    if (timeLimit.aborted) throw new PgbkError('PG', 'the time limit was reached during the check');
  } catch (err) {
    failWith(step, drill, err);
  } finally {
    step.stopClock();
    if (copy !== undefined)
      await stopRemoteCopy(copy).catch((err: unknown) => errors.push(`cannot stop the drill copy (pid ${copy?.pid}) on ${host.url}: ${message(err)}`));
    if (t !== undefined && scratch !== undefined) {
      const dir = scratch;
      await t.remove([dir]).catch((err: unknown) => errors.push(`cannot remove the scratch copy ${dir} on ${host.url}: ${message(err)}`));
    }
    await t?.close();
  }
}
