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
 *
 * One sequence wherever the drill runs (host.ts: this host, or a drill host over SSH). The time
 * limit covers restore, replay and the check: it aborts whichever runs (restore stops tar and the
 * decompressor by PID), and the record says in which phase. The record carries the scratch
 * directory's real path from the moment it exists, so the next apply can clean up after a pgbk
 * that was killed mid-drill (reap.ts).
 */

import os from 'node:os';
import type { ActionResult, ExecContext } from '../apply/context.js';
import { newBackupId, readBackup } from '../catalog/backups.js';
import { effectiveDrill, readDrills, writeDrillRecord } from '../catalog/drills.js';
import { readIdentity } from '../catalog/identity.js';
import type { DrillSettings } from '../config/resolved.js';
import { formatDuration } from '../config/duration.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { processIdentity } from '../lib/process-identity.js';
import { setLongTimeout } from '../lib/timer.js';
import type { DrillPhase, DrillRecord, RestoreDrillAction } from '../model/types.js';
import { parseLsn } from '../pg/lsn.js';
import type { RecoveryTarget } from '../restore/target.js';
import { openDrillHost, type DrillCopy, type DrillHost } from './host.js';

function message(err: unknown): string {
  const e = toPgbkError(err);
  return e.message + (e.hint ? ` (hint: ${e.hint})` : '');
}

const round1 = (s: number): number => Math.round(s * 10) / 10;

function recoveryTarget(action: RestoreDrillAction): RecoveryTarget {
  return action.targetLsn === undefined ? { kind: 'latest' } : { kind: 'lsn', lsn: parseLsn(action.targetLsn) };
}

const PHASE_TEXT: Readonly<Record<DrillPhase, string>> = { restore: 'the restore', replay: 'WAL replay', check: 'the check' };

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
  const errors: string[] = [];
  const run: DrillRun = {
    ctx,
    drill,
    id,
    action,
    deadline,
    signal,
    limit: timeLimit.signal,
    errors,
    phase: 'restore',
    get: () => record,
    set: async (r: DrillRecord, write = true): Promise<void> => {
      record = r;
      if (write) await writeDrillRecord(ctx.catalog, r);
    },
  };
  let timedOutIn: DrillPhase | undefined;
  try {
    await drillSequence(run, () => {
      // Stopped before the copy is stopped, as the record's timedOut is about restore, replay and check.
      timer.clear();
      if (timeLimit.signal.aborted) timedOutIn = run.phase;
    });
  } finally {
    timer.clear();
  }
  const { owner: _owner, ...rest } = record;
  record = {
    ...rest,
    status: errors.length === 0 ? 'PASSED' : 'FAILED',
    finishedAt: new Date().toISOString(),
    ...(timedOutIn === undefined ? {} : { timedOut: true, phase: timedOutIn }),
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

/** What the sequence shares with executeRestoreDrill: its record, limits, phase and error list. */
interface DrillRun {
  readonly ctx: ExecContext;
  readonly drill: DrillSettings;
  readonly id: string;
  readonly action: RestoreDrillAction;
  readonly deadline: number;
  /** The time limit or an interrupt. */
  readonly signal: AbortSignal;
  /** The time limit alone. */
  readonly limit: AbortSignal;
  readonly errors: string[];
  phase: DrillPhase;
  get(): DrillRecord;
  set(r: DrillRecord, write?: boolean): Promise<void>;
}

/**
 * scratch directory → restore → start → wait for promotion → check → stop (by PID) → remove the
 * scratch directory, on whichever host. `stopClock` is called once restore, replay and check are
 * over (or one failed), before the copy is stopped.
 */
async function drillSequence(run: DrillRun, stopClock: () => void): Promise<void> {
  const { ctx, drill, id, errors, signal } = run;
  const server = ctx.server;
  const on = drill.host === undefined ? '' : ` on ${drill.host.url}`;
  let host: DrillHost | undefined;
  let scratch: string | undefined;
  let copy: DrillCopy | undefined;
  try {
    host = await openDrillHost(drill, server.name);
    scratch = await host.makeScratch(ctx.catalog, drill, server, id);
    await run.set({ ...run.get(), scratch });
    const restoreStart = Date.now();
    const restored = await host.restore({
      catalog: ctx.catalog,
      configPath: ctx.configPath,
      server: server.name,
      scratch,
      target: recoveryTarget(run.action),
      signal,
      log: (line) => ctx.log(`drill ${id}: ${line}`),
    });
    const restoreSeconds = round1((Date.now() - restoreStart) / 1000);
    const identity = await readIdentity(ctx.catalog, server.name);
    const backup = await readBackup(ctx.catalog, server.name, restored.backupId);
    await run.set({
      ...run.get(),
      backupId: restored.backupId,
      restoreSeconds,
      ...(backup.status === 'DONE' ? { dataBytes: backup.sizes.data } : {}),
      ...(restored.walSegments === undefined ? {} : { walBytes: restored.walSegments * (identity?.walSegmentSize ?? 16 * 1024 * 1024) }),
    });
    if (signal.aborted) throw new PgbkError('PG', 'the restore finished after the time limit');

    run.phase = 'replay';
    const replayStart = Date.now();
    copy = await host.start({
      pgdata: restored.targetDir,
      runDir: scratch,
      pgVersion: identity?.pgVersion ?? backup.pgVersion,
      user: drill.check.user,
      settings: drill.settings,
    });
    await copy.waitPromoted(signal);
    await run.set({ ...run.get(), replaySeconds: round1((Date.now() - replayStart) / 1000) }, false);
    run.phase = 'check';
    const check = await copy.check(drill.check, run.deadline);
    await run.set({ ...run.get(), check }, false);
    if (!check.ok) errors.push(check.detail);
    if (signal.aborted) throw new PgbkError('PG', 'the check finished after the time limit');
  } catch (err) {
    errors.push(
      run.limit.aborted ? `time limit ${formatDuration(drill.timeLimitSeconds)} reached during ${PHASE_TEXT[run.phase]}: ${message(err)}` : message(err),
    );
  } finally {
    stopClock();
    if (copy !== undefined) {
      const pid = copy.pid;
      await copy.stop().catch((err: unknown) => errors.push(`cannot stop the drill copy (pid ${pid})${on}: ${message(err)}`));
    }
    if (host !== undefined && scratch !== undefined) {
      const dir = scratch;
      await host.removeScratch(dir).catch((err: unknown) => errors.push(`cannot remove the scratch copy ${dir}${on}: ${message(err)}`));
    }
    await host?.close().catch(() => undefined);
  }
}
