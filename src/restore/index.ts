/**
 * Restore: turn a stored base backup plus archived WAL back into a running cluster as it was at a
 * chosen moment. `pgbk restore` picks the backup (choose-backup.ts, pure: Barman's rule and the
 * WAL-continuity check, every refusal before anything is written), unpacks and verifies it
 * (restore.ts: one restore run against a Transport — LocalTransport on this host, SshTransport
 * for `--remote`, remote.ts), and writes the recovery configuration whose restore_command is
 * `pgbk wal-fetch` (wal-fetch.ts, with a prefetching spool: spool.ts, prefetch-worker.ts). PostgreSQL itself then
 * replays the WAL to the target; the integration tests prove it by querying the restored rows.
 */
export { chooseBackup, type ChooseInput, type Choice } from './choose-backup.js';
export { restoreBackup, chooseFromCatalog, type RestoreRequest, type RestoreSummary } from './restore.js';
export { fetchWal, isFetchableName, type WalFetchOptions, type WalFetchSource } from '../wal-fetch/local-fetch.js';
export { markInUse, clearInUse, type InUseMark } from './in-use.js';
export { parseHistory, timelinePath, timelineForSegment, type HistoryEntry, type TimelineStep } from './timeline-history.js';
export * from './target.js';
