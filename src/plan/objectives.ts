/**
 * Recovery objectives (issue 14): `objectives: { rpo, rto }` compared with what was measured.
 *
 * RPO: the age of the newest WAL in the catalog (archived, or being streamed into streaming/).
 * RTO: the last restore drill's restore + replay seconds; and, because backups and WAL change
 * between drills, an estimate for restoring the newest backup now: its data size at the drill's
 * restore rate plus the WAL after its begin at the drill's replay rate. Pure: records in, numbers
 * and sentences out; plan warns with them, status and metrics show them.
 */

import { formatDuration } from '../config/duration.js';
import type { ServerConfig } from '../config/resolved.js';
import { formatBytes } from '../lib/byte-size.js';
import type { ArchivedWal, BackupRecord, DoneBackup, DrillRecord, ObservedServer } from '../model/types.js';
import { overviewOf, runCounter, type WalOverview } from '../model/wal-runs.js';
import { formatAge } from './time-text.js';

/** A drill that measured both phases (it may still have failed its check afterwards). */
export interface MeasuredDrill {
  readonly id: string;
  readonly restoreSeconds: number;
  readonly replaySeconds: number;
  /** restore + replay: the recovery time the drill proved. */
  readonly rtoSeconds: number;
  readonly dataBytes?: number;
  readonly walBytes?: number;
}

export interface RtoEstimate {
  readonly backupId: string;
  readonly seconds: number;
  readonly dataBytes: number;
  /** Segments from the backup's beginWal to the newest archived one. */
  readonly walSegments: number;
  readonly walBytes: number;
  /** The drill whose rates were used. */
  readonly fromDrill: string;
}

export interface RtoMeasure {
  readonly drill?: MeasuredDrill;
  readonly estimate?: RtoEstimate;
}

/** The newest drill (by id) with both restore and replay measured. */
export function lastMeasuredDrill(drills: readonly DrillRecord[]): MeasuredDrill | undefined {
  let best: DrillRecord | undefined;
  for (const d of drills) {
    if (d.restoreSeconds === undefined || d.replaySeconds === undefined) continue;
    if (best === undefined || d.id > best.id) best = d;
  }
  if (best === undefined || best.restoreSeconds === undefined || best.replaySeconds === undefined) return undefined;
  return {
    id: best.id,
    restoreSeconds: best.restoreSeconds,
    replaySeconds: best.replaySeconds,
    rtoSeconds: Math.round((best.restoreSeconds + best.replaySeconds) * 10) / 10,
    ...(best.dataBytes === undefined ? {} : { dataBytes: best.dataBytes }),
    ...(best.walBytes === undefined ? {} : { walBytes: best.walBytes }),
  };
}

function newestDone(backups: readonly BackupRecord[]): DoneBackup | undefined {
  let best: DoneBackup | undefined;
  for (const b of backups) if (b.status === 'DONE' && (best === undefined || b.id > best.id)) best = b;
  return best;
}

/**
 * Restore time for the newest backup at the measured rates. A phase whose rate cannot be derived
 * (no bytes recorded, or a zero-second phase) counts with the drill's own seconds for it.
 */
export function estimateRto(
  drill: MeasuredDrill,
  backups: readonly BackupRecord[],
  archive: ArchivedWal | WalOverview,
  segSize: number,
): RtoEstimate | undefined {
  const newest = newestDone(backups);
  if (newest === undefined) return undefined;
  const walSegments = runCounter(overviewOf(archive).runs)(newest.beginWal, undefined);
  const walBytes = walSegments * segSize;
  const dataBytes = newest.sizes.data;
  const restore =
    drill.dataBytes !== undefined && drill.dataBytes > 0 && drill.restoreSeconds > 0
      ? dataBytes / (drill.dataBytes / drill.restoreSeconds)
      : drill.restoreSeconds;
  const replay =
    drill.walBytes !== undefined && drill.walBytes > 0 && drill.replaySeconds > 0 ? walBytes / (drill.walBytes / drill.replaySeconds) : drill.replaySeconds;
  return { backupId: newest.id, seconds: Math.round(restore + replay), dataBytes, walSegments, walBytes, fromDrill: drill.id };
}

export function measureRto(drills: readonly DrillRecord[], backups: readonly BackupRecord[], archive: ArchivedWal | WalOverview, segSize: number): RtoMeasure {
  const drill = lastMeasuredDrill(drills);
  if (drill === undefined) return {};
  const estimate = estimateRto(drill, backups, archive, segSize);
  return { drill, ...(estimate === undefined ? {} : { estimate }) };
}

/** Measured seconds: tenths below a minute (a drill of 2.8 s is not "2s"), else formatAge. */
function secondsText(s: number): string {
  return s < 60 ? `${Math.round(s * 10) / 10}s` : formatAge(s);
}

/** Seconds since the newest WAL arrived (archived or streamed); undefined when none has. */
export function rpoAgeSeconds(newestMtimes: readonly (string | undefined)[], now: Date): number | undefined {
  const times = newestMtimes.flatMap((t) => (t === undefined || Number.isNaN(Date.parse(t)) ? [] : [Date.parse(t)]));
  if (times.length === 0) return undefined;
  return Math.max(0, (now.getTime() - Math.max(...times)) / 1000);
}

export interface ObjectiveWarnings {
  readonly rpo: readonly string[];
  readonly rto: readonly string[];
}

/** Sentences for what is not met, with the numbers; empty when the objectives hold (or none is set). */
export function objectiveWarnings(config: ServerConfig, observed: ObservedServer, segSize: number, now: Date): ObjectiveWarnings {
  const rpo: string[] = [];
  const rto: string[] = [];
  const objectives = config.objectives;
  if (objectives?.rpoSeconds !== undefined) {
    const limit = `objective rpo ${formatDuration(objectives.rpoSeconds)}`;
    const age = rpoAgeSeconds([observed.wal.newestMtime, observed.newestStreamedMtime], now);
    if (age === undefined) {
      const first = observed.identity === undefined ? undefined : Date.parse(observed.identity.firstContact);
      if (first !== undefined && (now.getTime() - first) / 1000 > objectives.rpoSeconds) {
        rpo.push(`no WAL has reached the catalog since first contact; ${limit} is not met`);
      }
    } else if (age > objectives.rpoSeconds) {
      rpo.push(`newest WAL in the catalog is ${formatAge(age)} old; ${limit} is not met (a failure now would lose at least that much)`);
    }
  }
  if (objectives?.rtoSeconds !== undefined) {
    const limit = `objective rto ${formatDuration(objectives.rtoSeconds)}`;
    const drills = observed.drills ?? [];
    const m = measureRto(drills, observed.backups, observed.wal, segSize);
    const lastTimedOut = [...drills]
      .filter((d) => d.status === 'FAILED' && d.timedOut === true)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .pop();
    if (lastTimedOut !== undefined && (m.drill === undefined || lastTimedOut.id > m.drill.id)) {
      const limitText = config.drill === undefined ? '' : ` (time limit ${formatDuration(config.drill.timeLimitSeconds)})`;
      rto.push(`last drill ${lastTimedOut.id} timed out${limitText} before recovery finished; ${limit} is not proven`);
    } else if (m.drill === undefined) {
      rto.push(`${limit} is not proven: no restore drill has measured a recovery yet${config.drill === undefined ? ' (declare drill: for this server)' : ''}`);
    } else {
      const d = m.drill;
      if (d.rtoSeconds > objectives.rtoSeconds) {
        rto.push(
          `last drill ${d.id} recovered in ${secondsText(d.rtoSeconds)} (restore ${secondsText(d.restoreSeconds)} + replay ${secondsText(d.replaySeconds)}); ${limit} is not met`,
        );
      }
      const e = m.estimate;
      if (e !== undefined && e.seconds > objectives.rtoSeconds) {
        rto.push(
          `estimated recovery from newest backup ${e.backupId}: ${secondsText(e.seconds)} (${formatBytes(e.dataBytes)} data and ${e.walSegments} WAL segments, ${formatBytes(e.walBytes)}, at the rates drill ${e.fromDrill} measured); ${limit} is not met`,
        );
      }
    }
  }
  return { rpo, rto };
}
