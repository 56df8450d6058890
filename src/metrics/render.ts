/**
 * Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector reads
 * it: # HELP and # TYPE once per metric family, then its samples; label values escaped. Pure.
 */

import type { BackupStatus } from '../model/types.js';

export interface ServerMetrics {
  readonly server: string;
  readonly backupsByStatus: Readonly<Record<BackupStatus, number>>;
  /** Newest DONE backup: end time (epoch seconds), stored and data bytes. */
  readonly lastBackup?: { readonly endTime: number; readonly storedBytes: number; readonly dataBytes: number };
  readonly walSegments: number;
  /** Uncompressed: segments × segment size (no stat per archived file). */
  readonly walBytes: number;
  /** mtime (epoch seconds) of the newest archived segment. */
  readonly lastWalTime?: number;
  readonly incomingFiles: number;
  readonly quarantinedFiles: number;
  /** The last finished restore drill (issue 14): finish time (epoch seconds), passed, measured seconds. */
  readonly lastDrill?: { readonly time: number; readonly ok: boolean; readonly restoreSeconds?: number; readonly replaySeconds?: number };
  /** Declared objectives next to what was measured (seconds); absent parts are not exported. */
  readonly rpo?: Readonly<Record<string, number>>;
  /** kind → seconds: objective, measured (last drill), estimated (newest backup). */
  readonly rto?: Readonly<Record<string, number>>;
  /** `pgbk check` results by check name, when collected. */
  readonly checks?: Readonly<Record<string, boolean>>;
}

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly samples: { readonly labels: Labels; readonly value: number }[];
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

const STATUSES: readonly BackupStatus[] = ['STARTED', 'WAITING_FOR_WAL', 'DONE', 'FAILED'];

export function renderMetrics(servers: readonly ServerMetrics[], nowSeconds: number): string {
  const fam = (name: string, help: string, type: Family['type'] = 'gauge'): Family => ({ name, help, type, samples: [] });
  const backups = fam('pgbk_backups', 'Backups in the catalog by status.');
  const lastTime = fam('pgbk_last_backup_end_timestamp_seconds', 'End time of the newest completed backup.');
  const lastAge = fam('pgbk_last_backup_age_seconds', 'Seconds since the newest completed backup ended.');
  const lastStored = fam('pgbk_last_backup_stored_bytes', 'Stored (compressed) size of the newest completed backup.');
  const lastData = fam('pgbk_last_backup_data_bytes', 'Uncompressed data size of the newest completed backup.');
  const walSegments = fam('pgbk_wal_archived_segments', 'WAL segments in the archive.');
  const walBytes = fam('pgbk_wal_archived_bytes', 'Uncompressed size of the WAL segments in the archive.');
  const walTime = fam('pgbk_wal_last_archived_timestamp_seconds', 'When the newest archived WAL segment was stored.');
  const walAge = fam('pgbk_wal_last_archived_age_seconds', 'Seconds since the newest archived WAL segment was stored.');
  const incoming = fam('pgbk_incoming_files', 'Files waiting in incoming/.');
  const errors = fam('pgbk_quarantined_files', 'Files quarantined in errors/.');
  const checks = fam('pgbk_check_ok', '1 if the pgbk check passed, 0 if it failed.');
  const drillTime = fam('pgbk_drill_last_timestamp_seconds', 'When the last restore drill finished.');
  const drillOk = fam('pgbk_drill_last_success', '1 if the last restore drill passed, 0 if it failed.');
  const drillRestore = fam('pgbk_drill_last_restore_seconds', 'Restore (unpack and verify) seconds of the last restore drill.');
  const drillReplay = fam('pgbk_drill_last_replay_seconds', 'WAL replay seconds (start to promotion) of the last restore drill.');
  const rpo = fam('pgbk_rpo_seconds', 'Recovery point: the objective and the measured age of the newest WAL (label kind).');
  const rto = fam('pgbk_rto_seconds', 'Recovery time: the objective, the last drill (measured) and the estimate for the newest backup (label kind).');
  for (const s of servers) {
    const l = { server: s.server };
    for (const st of STATUSES) backups.samples.push({ labels: { ...l, status: st }, value: s.backupsByStatus[st] });
    if (s.lastBackup !== undefined) {
      lastTime.samples.push({ labels: l, value: s.lastBackup.endTime });
      lastAge.samples.push({ labels: l, value: Math.max(0, Math.round(nowSeconds - s.lastBackup.endTime)) });
      lastStored.samples.push({ labels: l, value: s.lastBackup.storedBytes });
      lastData.samples.push({ labels: l, value: s.lastBackup.dataBytes });
    }
    walSegments.samples.push({ labels: l, value: s.walSegments });
    walBytes.samples.push({ labels: l, value: s.walBytes });
    if (s.lastWalTime !== undefined) {
      walTime.samples.push({ labels: l, value: s.lastWalTime });
      walAge.samples.push({ labels: l, value: Math.max(0, Math.round(nowSeconds - s.lastWalTime)) });
    }
    incoming.samples.push({ labels: l, value: s.incomingFiles });
    errors.samples.push({ labels: l, value: s.quarantinedFiles });
    if (s.lastDrill !== undefined) {
      drillTime.samples.push({ labels: l, value: s.lastDrill.time });
      drillOk.samples.push({ labels: l, value: s.lastDrill.ok ? 1 : 0 });
      if (s.lastDrill.restoreSeconds !== undefined) drillRestore.samples.push({ labels: l, value: s.lastDrill.restoreSeconds });
      if (s.lastDrill.replaySeconds !== undefined) drillReplay.samples.push({ labels: l, value: s.lastDrill.replaySeconds });
    }
    for (const [kind, v] of Object.entries(s.rpo ?? {})) rpo.samples.push({ labels: { ...l, kind }, value: v });
    for (const [kind, v] of Object.entries(s.rto ?? {})) rto.samples.push({ labels: { ...l, kind }, value: v });
    for (const [name, ok] of Object.entries(s.checks ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      checks.samples.push({ labels: { ...l, check: name }, value: ok ? 1 : 0 });
    }
  }
  const generated = fam('pgbk_metrics_generated_timestamp_seconds', 'When these metrics were collected.');
  generated.samples.push({ labels: {}, value: nowSeconds });
  const out: string[] = [];
  const families = [backups, lastTime, lastAge, lastStored, lastData, walSegments, walBytes, walTime, walAge, incoming, errors, checks];
  families.push(drillTime, drillOk, drillRestore, drillReplay, rpo, rto, generated);
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
      out.push(`${f.name}${labels.length === 0 ? '' : `{${labels.join(',')}}`} ${formatValue(s.value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}
