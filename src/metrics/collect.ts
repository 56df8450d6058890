/** Metrics from the catalog (no server connection unless check results are asked for). */

import { writeFileAtomic } from '../catalog/index.js';
import type { Desired } from '../config/resolved.js';
import { observeServer } from '../observe/observe.js';
import type { BackupStatus } from '../model/types.js';
import { checkServer } from '../check/run-checks.js';
import { renderMetrics, type ServerMetrics } from './render.js';
import { lastFinishedDrill } from '../plan/drill.js';
import { measureRto, rpoAgeSeconds } from '../plan/objectives.js';
import { DEFAULT_SEGMENT_SIZE } from '../pg/wal-name.js';

export interface CollectOptions {
  /** Also run `pgbk check` per server (connects to PostgreSQL) and export pgbk_check_ok. */
  readonly withChecks: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly now: Date;
}

export async function collectMetrics(desired: Desired, opts: CollectOptions): Promise<ServerMetrics[]> {
  const out: ServerMetrics[] = [];
  for (const server of desired.servers) {
    const o = await observeServer(desired.catalog, server);
    const byStatus: Record<BackupStatus, number> = { STARTED: 0, WAITING_FOR_WAL: 0, DONE: 0, FAILED: 0 };
    for (const b of o.backups) byStatus[b.status]++;
    const done = o.backups.filter((b) => b.status === 'DONE');
    const last = done[done.length - 1];
    const segSize = o.identity?.walSegmentSize ?? DEFAULT_SEGMENT_SIZE;
    let checks: Record<string, boolean> | undefined;
    if (opts.withChecks) {
      const report = await checkServer(server, { catalog: desired.catalog, now: opts.now, env: opts.env });
      checks = Object.fromEntries(report.checks.map((c) => [c.name, c.ok]));
    }
    const drill = lastFinishedDrill(o.drills ?? []);
    const finished = drill === undefined ? Number.NaN : Date.parse(drill.finishedAt ?? drill.startedAt) / 1000;
    const objectives = server.objectives;
    const rtoMeasure = objectives === undefined ? {} : measureRto(o.drills ?? [], o.backups, o.wal, segSize);
    const rpoAge = objectives === undefined ? undefined : rpoAgeSeconds([o.wal.newestMtime, o.newestStreamedMtime], opts.now);
    const some = (x: Record<string, number | undefined>): Record<string, number> =>
      Object.fromEntries(Object.entries(x).filter((e): e is [string, number] => e[1] !== undefined));
    out.push({
      server: server.name,
      ...(drill === undefined || Number.isNaN(finished)
        ? {}
        : {
            lastDrill: {
              time: finished,
              ok: drill.status === 'PASSED',
              ...(drill.restoreSeconds === undefined ? {} : { restoreSeconds: drill.restoreSeconds }),
              ...(drill.replaySeconds === undefined ? {} : { replaySeconds: drill.replaySeconds }),
            },
          }),
      ...(objectives === undefined
        ? {}
        : {
            rpo: some({ objective: objectives.rpoSeconds, measured: rpoAge === undefined ? undefined : Math.round(rpoAge) }),
            rto: some({ objective: objectives.rtoSeconds, measured: rtoMeasure.drill?.rtoSeconds, estimated: rtoMeasure.estimate?.seconds }),
          }),
      backupsByStatus: byStatus,
      ...(last === undefined
        ? {}
        : {
            lastBackup: {
              endTime: Date.parse(last.endTime) / 1000,
              storedBytes: last.sizes.stored,
              dataBytes: last.sizes.data,
            },
          }),
      walSegments: o.wal.segments.length,
      walBytes: o.wal.segments.length * segSize,
      ...(o.wal.newestMtime === undefined ? {} : { lastWalTime: Date.parse(o.wal.newestMtime) / 1000 }),
      incomingFiles: o.incoming.filter((f) => f.kind !== 'in-flight').length,
      quarantinedFiles: o.quarantined,
      ...(checks === undefined ? {} : { checks }),
    });
  }
  return out;
}

export async function metricsText(desired: Desired, opts: CollectOptions): Promise<string> {
  return renderMetrics(await collectMetrics(desired, opts), Math.round(opts.now.getTime() / 1000));
}

/**
 * Write the metrics file atomically (temp + rename in the same directory): node_exporter's textfile
 * collector must never read a half-written file. Name it *.prom in the collector's directory.
 */
export async function writeMetricsFile(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, text, { mode: 0o644 });
}
