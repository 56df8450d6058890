/**
 * Plain data shared by the planner, the observers and the executors. Nothing here does I/O.
 */

import type { Compression } from '../config/resolved.js';

export type BackupStatus = 'STARTED' | 'WAITING_FOR_WAL' | 'DONE' | 'FAILED';
export type KeepMode = 'none' | 'full' | 'standalone';

/** The process writing a STARTED backup: lets observe detect a dead owner. */
export interface BackupOwner {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  readonly processStart?: string;
}

/** A restore reading a DONE backup: retention must not delete it (issue #3). */
export interface InUseEntry {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  readonly processStart?: string;
}

/** Fields every backup.json has, whatever its status. Times are ISO-8601 UTC strings. */
interface BackupBase {
  readonly formatVersion: 1;
  readonly id: string; // YYYYMMDDTHHMMSSZ (UTC)
  readonly server: string;
  /** The schedule fire time (ISO) this backup was taken for; a one-off backup uses its begin time. */
  readonly slot: string;
  readonly method: 'basebackup' | 'ssh';
  readonly pgVersion: number; // server_version_num
  readonly systemIdentifier: string; // decimal string (uint64)
  readonly beginTime: string;
  readonly compression: Compression;
  readonly keep: KeepMode;
}

/**
 * What a complete copy recorded (from WAITING_FOR_WAL on): the WAL range a restore replays, the
 * end, the sizes and the sha256 of the stored files. LSNs are "X/Y", WAL names 24 hex.
 */
export interface BackupCopy {
  readonly timeline: number;
  readonly beginLsn: string;
  readonly endLsn: string;
  readonly beginWal: string;
  readonly endWal: string;
  readonly endTime: string;
  readonly sizes: { readonly data: number; readonly stored: number };
  /** Stored file (relative to the backup dir) → sha256 hex of its stored bytes. */
  readonly checksums: Readonly<Record<string, string>>;
  /**
   * method ssh (file-level incremental): bytes copied over SSH vs reused (hard-linked) from the
   * backup named in reusedFrom; files counts both. Absent for pg_basebackup backups.
   */
  readonly copiedBytes?: number;
  readonly reusedBytes?: number;
  readonly reusedFrom?: string;
  readonly fileCount?: number;
}

/** Being copied by `owner`. */
export interface StartedBackup extends BackupBase {
  readonly status: 'STARTED';
  readonly owner: BackupOwner;
}

/** Data complete and durable; DONE once every segment beginWal…endWal is archived. */
export interface WaitingBackup extends BackupBase, BackupCopy {
  readonly status: 'WAITING_FOR_WAL';
}

/** Restorable. */
export interface DoneBackup extends BackupBase, BackupCopy {
  readonly status: 'DONE';
  /** Set while a restore reads it: retention must not delete it (issue #3). */
  readonly inUse?: readonly InUseEntry[];
}

/**
 * Will never be restorable; `error` says why. It keeps what was known when it failed: usually no
 * copy fields (a failure while copying), all of them when only the last record write failed, and
 * no endTime when a later apply found its owner gone.
 */
export interface FailedBackup extends BackupBase, Partial<BackupCopy> {
  readonly status: 'FAILED';
  readonly error: string;
  /** Only in memory: a STARTED record whose owner is gone, shown as FAILED (observe). */
  readonly owner?: BackupOwner;
}

/** Contents of backups/<id>/backup.json, by status: each status carries the fields it always has. */
export type BackupRecord = StartedBackup | WaitingBackup | DoneBackup | FailedBackup;

/** A backup whose copy is complete: its WAL range, sizes and checksums are known. */
export type CopiedBackup = WaitingBackup | DoneBackup;

export function isCopied(b: BackupRecord): b is CopiedBackup {
  return b.status === 'WAITING_FOR_WAL' || b.status === 'DONE';
}

/**
 * The copy fields a record has, for views that show them whatever the status ("-" when unknown):
 * none while STARTED, all once copied, what was known for FAILED.
 */
export function copyFieldsOf(b: BackupRecord): Partial<BackupCopy> {
  return b.status === 'STARTED' ? {} : b;
}

/**
 * The FAILED record of a backup that stopped: its owner dropped (the process is done with it), the
 * rest kept as it was, so the JSON keeps its key order; `endTime` when the failure was seen as it
 * happened (not by a later apply finding the owner gone).
 */
export function failedBackup(b: BackupRecord, error: string, endTime?: string): FailedBackup {
  const end = endTime === undefined ? {} : { endTime };
  if (b.status === 'STARTED' || b.status === 'FAILED') {
    const { owner: _owner, ...rest } = b;
    return { ...rest, status: 'FAILED', ...end, error };
  }
  return { ...b, status: 'FAILED', ...end, error };
}

export interface ServerIdentity {
  readonly systemIdentifier: string; // decimal uint64
  readonly pgVersion: number; // server_version_num, e.g. 150008
  readonly walSegmentSize: number; // bytes
  readonly firstContact: string; // ISO time
}

/** An archived WAL segment, as seen by listing wal/<TTTTTTTTLLLLLLLL>/. */
export interface ArchivedWal {
  /** Sorted ascending by (timeline, segment number): names of archived full segments (24 hex). */
  readonly segments: readonly string[];
  /** Timeline history file names, e.g. "00000002.history". */
  readonly histories: readonly string[];
  /** Backup history file names, e.g. "000000010000000000000002.00000028.backup". */
  readonly backupFiles: readonly string[];
  /**
   * Segments archived as .partial, e.g. "000000010000000000000005.partial" (an old timeline's last
   * segment at promotion). Recovery never asks for them; they are pruned like the segment they cover.
   */
  readonly partials?: readonly string[];
  /** Newest archived segment's mtime (ISO), for the RPO (maxLag) warning. */
  readonly newestMtime?: string;
}

export type IncomingKind = 'segment' | 'history' | 'backup' | 'partial' | 'in-flight' | 'unknown';

export interface IncomingFile {
  readonly name: string;
  readonly kind: IncomingKind;
  readonly size: number;
  /** Last modification (ISO): a short segment written moments ago is still being copied. */
  readonly mtime?: string;
}

/**
 * A segment in incoming/ shorter than a segment and modified less than this long ago is taken to be
 * still in flight (a plain `cp` archive_command writes in place), not quarantined.
 */
export const IN_FLIGHT_GRACE_MS = 120_000;

export interface ObservedServer {
  readonly name: string;
  /** From server.json; absent before first contact. */
  readonly identity?: ServerIdentity;
  /** Sorted by id. A STARTED backup whose owner is dead is reported with status FAILED. */
  readonly backups: readonly BackupRecord[];
  readonly wal: ArchivedWal;
  /** Sorted by name. */
  readonly incoming: readonly IncomingFile[];
  /** Number of files in errors/ (quarantined). */
  readonly quarantined: number;
  /**
   * Whether PostgreSQL answered when this observation asked (plan and apply ask; read-only views
   * such as status do not, so it is absent there and nothing is said about it).
   */
  readonly contact?: ServerContact;
  /** The catalog root directory (this path) does not exist: nothing was ever stored there. */
  readonly catalogMissing?: string;
  /** Restore drill records, sorted by id (absent: not read, e.g. hand-made test observations). */
  readonly drills?: readonly DrillRecord[];
  /** Newest mtime (ISO) of WAL in streaming/ (wal method stream): the RPO objective's other source. */
  readonly newestStreamedMtime?: string;
  /** The catalog keeps the `ssh` method's chunks content-addressed (an object store): retention sweeps them. */
  readonly chunkStore?: boolean;
}

/** The state of a restore drill record (src/drill/): RUNNING while its owner works on it. */
export type DrillStatus = 'RUNNING' | 'PASSED' | 'FAILED';

/** The step of a drill its time limit ended. */
export type DrillPhase = 'restore' | 'replay' | 'check';

/**
 * <server>/drills/<id>.json (issue 14): one restore drill, written RUNNING when it starts (so no
 * second apply starts the same drill) and PASSED/FAILED when it ends. Times ISO; seconds measured.
 */
export interface DrillRecord {
  readonly formatVersion: 1;
  /** YYYYMMDDTHHMMSSZ of its start, like a backup id. */
  readonly id: string;
  readonly server: string;
  readonly status: DrillStatus;
  /** The schedule fire time (ISO) this drill was run for. */
  readonly slot: string;
  readonly startedAt: string;
  readonly finishedAt?: string;
  /** While RUNNING: who runs it (a dead owner makes it FAILED in every view, like a backup's). */
  readonly owner?: BackupOwner;
  /** "latest" or "lsn X/Y" (random point inside the recoverable window). */
  readonly target: string;
  readonly targetLsn?: string;
  /** drill.host (ssh://USER@HOST[:PORT]) when it ran on a drill host over SSH; absent: on the backup host. */
  readonly host?: string;
  /** The backup restored (known once restore chose it). */
  readonly backupId?: string;
  /** Unpacking and verifying the backup. */
  readonly restoreSeconds?: number;
  /** From starting PostgreSQL until it was promoted (WAL replay). */
  readonly replaySeconds?: number;
  /** The backup's uncompressed data bytes and the WAL bytes replayed: the rates RTO estimates use. */
  readonly dataBytes?: number;
  readonly walBytes?: number;
  readonly check?: { readonly ok: boolean; readonly detail: string };
  /** The time limit ended it, in this phase. */
  readonly timedOut?: boolean;
  readonly phase?: DrillPhase;
  /** Real path of the drill's scratch directory (on `host` when set): what cleanup after a killed pgbk may remove. */
  readonly scratch?: string;
  readonly errors: readonly string[];
}

export type ServerContact =
  | {
      readonly reachable: true;
      /** Why the server's own archiver never archives (pg/archive-settings.ts); absent when it may. */
      readonly archiverNeverArchives?: string;
      /** The timeline the server writes (or replays) now. */
      readonly timeline?: number;
    }
  | { readonly reachable: false; readonly error: string };

export interface Observed {
  /** Sorted by name; one per configured server. */
  readonly servers: readonly ObservedServer[];
}

interface ActionBase {
  readonly server: string;
  /** What the action is about: a backup id, a WAL range, a file name. */
  readonly subject: string;
  /** Why the planner wants it, in words a DBA reads in the plan. */
  readonly reason: string;
}

export interface ArchiveWalAction extends ActionBase {
  readonly kind: 'archive-wal';
  /** File names in incoming/, sorted. */
  readonly files: readonly string[];
}

export interface BaseBackupAction extends ActionBase {
  readonly kind: 'base-backup';
  /** The schedule fire time (ISO) this backup satisfies, or now for an unscheduled first backup. */
  readonly slot: string;
}

export interface FinishBackupAction extends ActionBase {
  readonly kind: 'finish-backup';
  readonly backupId: string;
}

export interface DeleteBackupAction extends ActionBase {
  readonly kind: 'delete-backup';
  readonly backupId: string;
}

export interface PruneWalAction extends ActionBase {
  readonly kind: 'prune-wal';
  /** Archived segment names to delete, sorted. */
  readonly segments: readonly string[];
  /** Backup history files (.backup) and .partial segments to delete with them (the field keeps its name for saved plans). */
  readonly backupFiles: readonly string[];
  /** Uncompressed bytes: segments.length × segment size. */
  readonly bytes: number;
}

export interface QuarantineAction extends ActionBase {
  readonly kind: 'quarantine';
  /** File name in incoming/. */
  readonly file: string;
}

export interface CleanupFailedAction extends ActionBase {
  readonly kind: 'cleanup-failed';
  readonly backupId: string;
}

/**
 * Remove the `ssh` method's content-addressed chunks no retained backup refers to (object storage,
 * issue 12): a mark-and-sweep run by apply/sweep-chunks.ts after the deletions, under the lock.
 */
export interface SweepChunksAction extends ActionBase {
  readonly kind: 'sweep-chunks';
}

/** Run a restore drill (issue 14; executed by src/drill/ after the server's lock is released). */
export interface RestoreDrillAction extends ActionBase {
  readonly kind: 'restore-drill';
  /** The drill schedule's fire time (ISO) this drill satisfies. */
  readonly slot: string;
  /** A random point inside the recoverable window, chosen by plan; absent: latest. */
  readonly targetLsn?: string;
}

export type Action =
  | RestoreDrillAction
  | ArchiveWalAction
  | BaseBackupAction
  | FinishBackupAction
  | DeleteBackupAction
  | PruneWalAction
  | QuarantineAction
  | CleanupFailedAction
  | SweepChunksAction;

export type ActionKind = Action['kind'];

/** Execution order within a server (DESIGN.md §1). */
export const ACTION_ORDER: readonly ActionKind[] = [
  'quarantine',
  'archive-wal',
  'base-backup',
  'finish-backup',
  'cleanup-failed',
  'delete-backup',
  'prune-wal',
  'sweep-chunks',
  'restore-drill',
];

export type WarningCode =
  | 'wal-gap'
  | 'rpo-exceeded'
  | 'min-redundancy'
  | 'no-backup-yet'
  | 'unknown-files'
  | 'quarantined-files'
  | 'identity-unknown'
  /** An obsolete backup kept because a restore is reading it (BackupRecord.inUse). */
  | 'backup-in-use'
  /** PostgreSQL did not answer the plan's probe: apply will fail (or skip) this server's work. */
  | 'server-unreachable'
  /** The catalog directory does not exist (a wrong path, or a first run). */
  | 'catalog-missing'
  /** The last restore drill failed or timed out (issue 14). */
  | 'drill-failed'
  /** objectives.rpo / objectives.rto not met by what was measured (issue 14). */
  | 'rpo-objective'
  | 'rto-objective'
  /** The server's archiver can never archive (e.g. restore's archive_command = 'false'). */
  | 'archiving-refused'
  /** A DONE backup a restore refuses: a segment of its own WAL is missing from the archive. */
  | 'backup-unrestorable'
  /** The archive holds a timeline newer than the server's (a copy archived as it, or a stale old primary). */
  | 'newer-timeline';

export interface PlanWarning {
  readonly server: string;
  readonly code: WarningCode;
  readonly message: string;
}

export interface Plan {
  readonly now: string; // ISO
  /** Sorted by server, then ACTION_ORDER, then subject. */
  readonly actions: readonly Action[];
  readonly warnings: readonly PlanWarning[];
}

/**
 * When a finished backup ended, in ms since the epoch. An unreadable end time counts as "now or
 * later": such a backup is never expired by retention nor pushed out of a PITR window.
 */
export function endTimeMs(b: DoneBackup): number {
  const t = Date.parse(b.endTime);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}
