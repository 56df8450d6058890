/**
 * plan(): desired configuration + observed catalog + now → the actions and warnings for every
 * server, in apply order (DESIGN.md §1). Pure and deterministic: the same inputs give a plan that is
 * equal value for value and serialises byte for byte the same.
 *
 * Within one plan, retention and pruning see only backups that are DONE now: a backup this plan
 * finishes counts from the next plan on. That can leave one more deletion for the next run, but
 * never deletes a backup on the strength of an action that might still fail.
 */

import { planChunkSweep } from './chunk-sweep.js';
import type { Desired, ServerConfig } from '../config/resolved.js';
import { formatDuration } from '../config/duration.js';
import { ACTION_ORDER } from '../model/types.js';
import type { Action, ObservedServer, Observed, Plan, PlanWarning, WarningCode } from '../model/types.js';
import { isBackupDue } from './schedule.js';
import { planRetention } from './retention.js';
import { backupsMissingOwnWal } from './recoverable.js';
import { newestArchivedTimeline } from './archive-timeline.js';
import { planWal } from './wal.js';
import { planIncoming } from './incoming.js';
import { formatAge, formatIsoText } from './time-text.js';
import { lastFinishedDrill, planDrill } from './drill.js';
import { objectiveWarnings } from './objectives.js';
import { DEFAULT_SEGMENT_SIZE } from '../pg/wal-name.js';

export { planSummary, type PlanSummary } from './summary.js';

export interface ServerPlan {
  readonly actions: readonly Action[];
  readonly warnings: readonly PlanWarning[];
}

function rpoWarning(config: ServerConfig, observed: ObservedServer, pendingSegments: number, now: Date): string | undefined {
  const maxLag = config.wal.maxLagSeconds;
  if (maxLag === undefined) return undefined;
  const limit = `maxLag ${formatDuration(maxLag)}`;
  const newest = observed.wal.newestMtime;
  if (newest !== undefined) {
    const age = (now.getTime() - Date.parse(newest)) / 1000;
    if (!(age > maxLag)) return undefined;
    return `newest archived WAL is ${formatAge(age)} old (${limit}); check archive_command on the server`;
  }
  // Nothing archived yet: only an alarm once the cluster is known and has had maxLag to send WAL.
  const identity = observed.identity;
  if (identity === undefined || pendingSegments > 0) return undefined;
  const sinceContact = (now.getTime() - Date.parse(identity.firstContact)) / 1000;
  if (!(sinceContact > maxLag)) return undefined;
  return `no WAL archived since first contact at ${formatIsoText(identity.firstContact)} (${limit}); check archive_command on the server`;
}

export function planServer(config: ServerConfig, observed: ObservedServer, now: Date): ServerPlan {
  const server = config.name;
  const actions: Action[] = [];
  const warnings: PlanWarning[] = [];
  const warn = (code: WarningCode, message: string): void => {
    warnings.push({ server, code, message });
  };

  const incoming = planIncoming(server, observed.identity, observed.incoming, now);
  actions.push(...incoming.quarantine);
  if (incoming.archive !== undefined) actions.push(incoming.archive);

  const due = isBackupDue(config, observed.backups, now);
  if (due.due) {
    actions.push({ kind: 'base-backup', server, subject: `slot ${formatIsoText(due.slot)}`, reason: due.reason, slot: due.slot });
  }

  const segSize = observed.identity?.walSegmentSize ?? DEFAULT_SEGMENT_SIZE;
  const missingOwnWal = backupsMissingOwnWal(observed.backups, observed.wal, segSize);
  const retention = planRetention(config.retention, observed.backups, now, missingOwnWal);
  for (const e of retention.failed) {
    actions.push({ kind: 'cleanup-failed', server, subject: e.backup.id, reason: e.reason, backupId: e.backup.id });
  }
  for (const e of retention.obsolete) {
    actions.push({ kind: 'delete-backup', server, subject: e.backup.id, reason: e.reason, backupId: e.backup.id });
  }

  const wal = planWal({
    segSize,
    archived: observed.wal,
    incomingSegments: incoming.segments,
    backups: observed.backups,
    remaining: retention.remaining,
    ...(config.retention.pitrWindowSeconds === undefined ? {} : { pitrWindowSeconds: config.retention.pitrWindowSeconds, now }),
  });
  for (const f of wal.finish) {
    actions.push({ kind: 'finish-backup', server, subject: f.backup.id, reason: f.reason, backupId: f.backup.id });
  }
  if (wal.prune !== undefined) {
    const p = wal.prune;
    actions.push({
      kind: 'prune-wal',
      server,
      subject: p.subject,
      reason: p.reason,
      segments: p.segments,
      backupFiles: p.backupFiles,
      bytes: p.bytes,
    });
  }

  const sweep = planChunkSweep(
    observed.chunkStore === true,
    [...retention.failed, ...retention.obsolete].map((e) => ({ id: e.backup.id, method: e.backup.method })),
  );
  if (sweep !== undefined) actions.push({ kind: 'sweep-chunks', server, subject: sweep.subject, reason: sweep.reason });

  const drill = planDrill(config, observed, now);
  if (drill?.due === true) {
    actions.push({
      kind: 'restore-drill',
      server,
      subject: drill.subject,
      reason: drill.reason,
      slot: drill.slot,
      ...(drill.targetLsn === undefined ? {} : { targetLsn: drill.targetLsn }),
    });
  }

  if (observed.catalogMissing !== undefined) {
    warn(
      'catalog-missing',
      `catalog ${observed.catalogMissing} does not exist: apply creates it empty; if backups should be there, fix \`catalog\` in the configuration`,
    );
  }
  if (observed.contact !== undefined && !observed.contact.reachable) {
    const consequence =
      observed.identity === undefined
        ? 'apply cannot prepare this server (its identity is not recorded yet) and will fail for it'
        : due.due
          ? 'apply archives WAL from incoming/ with the identity recorded at first contact, but the planned base backup will fail'
          : 'apply archives WAL from incoming/ with the identity recorded at first contact; base backups fail until it is reachable';
    warn('server-unreachable', `cannot reach PostgreSQL: ${observed.contact.error}; ${consequence}`);
  }
  if (observed.contact?.reachable === true && observed.contact.archiverNeverArchives !== undefined && config.wal.method === 'push') {
    warn(
      'archiving-refused',
      `${observed.contact.archiverNeverArchives}: no WAL reaches the catalog and base backups are refused${due.due ? ' (the planned one too)' : ''} until archiving works; pgbk check ${server} says what to change`,
    );
  }
  const newest = newestArchivedTimeline(observed.wal);
  if (observed.contact?.reachable === true && observed.contact.timeline !== undefined && newest !== undefined && newest.timeline > observed.contact.timeline) {
    warn(
      'newer-timeline',
      `the archive holds timeline ${newest.timeline} (${newest.from}), newer than the server's timeline ${observed.contact.timeline}: a copy restored from this catalog archived into it as this server, or the server is an old primary still running after a failover; a restore that follows the latest timeline (the default) replays timeline ${newest.timeline} (pgbk check ${server} says what to do)`,
    );
  }
  if (observed.identity === undefined && incoming.segments.length > 0) {
    warn(
      'identity-unknown',
      'no server.json yet: the cluster identity and WAL segment size are recorded at first contact; incoming sizes are not checked until then',
    );
  }
  for (const m of wal.gapWarnings) warn('wal-gap', m);
  for (const [id, missing] of missingOwnWal) {
    warn(
      'backup-unrestorable',
      `backup ${id} cannot be restored: segment ${missing} of its own WAL is missing from the archive; retention does not count it, and deletes it only once every backup it keeps is newer (put the segment back if you have it)`,
    );
  }
  const rpo = rpoWarning(config, observed, incoming.segments.length, now);
  if (rpo !== undefined) warn('rpo-exceeded', rpo);
  for (const m of retention.minRedundancyWarnings) warn('min-redundancy', m);
  for (const m of retention.inUseWarnings) warn('backup-in-use', m);
  if (!observed.backups.some((b) => b.status === 'DONE')) {
    const inProgress = observed.backups.filter((b) => b.status === 'STARTED' || b.status === 'WAITING_FOR_WAL');
    const finishing = new Set(wal.finish.map((f) => f.backup.id));
    let detail: string;
    if (inProgress.length > 0) {
      detail = inProgress.map((b) => `backup ${b.id} is ${b.status}${finishing.has(b.id) ? ' (finished by this plan)' : ''}`).join('; ');
    } else if (due.due) {
      detail = 'the first base backup is planned now';
    } else {
      detail = `no schedule is configured: run "pgbk backup ${server}"`;
    }
    warn('no-backup-yet', `no DONE backup yet; ${detail}`);
  }
  const lastDrill = lastFinishedDrill(observed.drills ?? []);
  if (lastDrill?.status === 'FAILED') {
    warn(
      'drill-failed',
      `last restore drill ${lastDrill.id} failed${lastDrill.timedOut === true ? ' (time limit)' : ''}: ${lastDrill.errors.join('; ') || 'see pgbk status'}`,
    );
  }
  const objectives = objectiveWarnings(config, observed, segSize, now);
  for (const m of objectives.rpo) warn('rpo-objective', m);
  for (const m of objectives.rto) warn('rto-objective', m);
  if (observed.quarantined > 0) {
    warn(
      'quarantined-files',
      `${observed.quarantined} file${observed.quarantined === 1 ? '' : 's'} in errors/ (quarantined); inspect and remove them once understood`,
    );
  }

  return { actions: sortActions(actions), warnings };
}

const ORDER_INDEX: ReadonlyMap<string, number> = new Map(ACTION_ORDER.map((k, i) => [k, i]));

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareActions(a: Action, b: Action): number {
  return compareText(a.server, b.server) || (ORDER_INDEX.get(a.kind) ?? 0) - (ORDER_INDEX.get(b.kind) ?? 0) || compareText(a.subject, b.subject);
}

function sortActions(actions: readonly Action[]): Action[] {
  return [...actions].sort(compareActions);
}

/**
 * Plans every configured server that was observed (observe may be limited to some servers, e.g.
 * `pgbk plan main`); servers are taken in name order.
 */
export function plan(desired: Desired, observed: Observed, now: Date): Plan {
  const byName = new Map(observed.servers.map((s) => [s.name, s]));
  const configs = [...desired.servers].sort((a, b) => compareText(a.name, b.name));
  const actions: Action[] = [];
  const warnings: PlanWarning[] = [];
  for (const config of configs) {
    const o = byName.get(config.name);
    if (o === undefined) continue;
    const p = planServer(config, o, now);
    actions.push(...p.actions);
    warnings.push(...p.warnings);
  }
  return { now: now.toISOString(), actions: sortActions(actions), warnings };
}
