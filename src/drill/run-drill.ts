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
import type { DrillSettings } from '../config/resolved.js';
import { formatDuration } from '../config/duration.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { processIdentity } from '../lib/process-identity.js';
import { setLongTimeout } from '../lib/timer.js';
import type { DrillRecord, RestoreDrillAction } from '../model/types.js';
import { parseLsn } from '../pg/lsn.js';
import { isInside, resolveReal } from '../restore/target-dir.js';
import type { RecoveryTarget } from '../restore/target.js';
import { runDrillCheck } from './check.js';
import { startCopy, stopCopy, waitPromoted, type RunningCopy } from './postgres.js';

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
    errors: [],
  };
  await writeDrillRecord(ctx.catalog, record);
  ctx.log(`restore drill ${id} of ${server.name}: target ${record.target}, time limit ${formatDuration(drill.timeLimitSeconds)}`);

  const deadline = started + drill.timeLimitSeconds * 1000;
  const timeLimit = new AbortController();
  const timer = setLongTimeout(() => timeLimit.abort(), drill.timeLimitSeconds * 1000, { unref: true });
  const signal = ctx.signal === undefined ? timeLimit.signal : AbortSignal.any([timeLimit.signal, ctx.signal]);
  // restoreBackup gets only the interrupt signal: the time limit is checked when it returns. Its
  // abort path kills tar mid-stream, which the drill must not depend on for its record to be written.
  const interrupt = ctx.signal;
  const errors: string[] = [];
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
    const target: RecoveryTarget = action.targetLsn === undefined ? { kind: 'latest' } : { kind: 'lsn', lsn: parseLsn(action.targetLsn) };
    const { restoreBackup } = await import('../restore/restore.js');
    const restoreStart = Date.now();
    const summary = await restoreBackup({
      catalog: ctx.catalog,
      configPath: ctx.configPath,
      server: server.name,
      requested: undefined,
      targetDir: path.join(scratch, 'data'),
      tablespaceDir: path.join(scratch, 'tablespaces'),
      target,
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
    record = {
      ...record,
      backupId: summary.backupId,
      restoreSeconds,
      ...(backup.status === 'DONE' ? { dataBytes: backup.sizes.data } : {}),
      walBytes: summary.wal.segments * (identity?.walSegmentSize ?? 16 * 1024 * 1024),
    };
    await writeDrillRecord(ctx.catalog, record);
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
    record = { ...record, replaySeconds: round1((Date.now() - replayStart) / 1000) };
    const check = await runDrillCheck(copy, drill.check, deadline);
    record = { ...record, check };
    if (!check.ok) errors.push(check.detail);
    if (timeLimit.signal.aborted) throw new PgbkError('PG', 'the time limit was reached during the check');
  } catch (err) {
    const text = timeLimit.signal.aborted ? `time limit ${formatDuration(drill.timeLimitSeconds)} reached: ${message(err)}` : message(err);
    errors.push(text);
  } finally {
    timer.clear();
    if (copy !== undefined) await stopCopy(copy);
    if (scratch !== undefined) {
      await rm(scratch, { recursive: true, force: true, maxRetries: 3 }).catch((err: unknown) => {
        errors.push(`cannot remove the scratch copy ${scratch}: ${message(err)}`);
      });
    }
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
  const from = record.backupId === undefined ? '' : ` from backup ${record.backupId}`;
  if (record.status === 'PASSED') {
    return { action, outcome: 'done', detail: `drill ${id} PASSED${from}${measured}; ${record.check?.detail ?? ''}` };
  }
  return { action, outcome: 'failed', detail: `drill ${id} FAILED${from}${measured}: ${errors.join('; ')}` };
}
