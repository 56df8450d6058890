/**
 * The configuration after defaults are applied: what the rest of pgbk consumes ("Desired").
 * Pure data; produced by config/resolve.ts from the validated YAML (types.gen.ts).
 */

export type Compression = 'zstd' | 'gzip' | 'none';

export interface SshConfig {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly identityFile?: string;
  readonly knownHosts?: string;
  /** SSH-only mode: conninfo for psql run on the database host. */
  readonly psqlConnection?: string;
  /** Command running pgbk on the database host (split on spaces); absent = "pgbk". */
  readonly pgbk?: string;
}

export interface RetentionPolicy {
  /** Keep the newest N DONE backups (Barman REDUNDANCY). */
  readonly redundancy?: number;
  /** Keep what is needed to recover to any point in the last N seconds (Barman RECOVERY WINDOW). */
  readonly recoveryWindowSeconds?: number;
  /** Never delete if fewer than this many DONE backups would remain. Default 1. */
  readonly minRedundancy: number;
}

export interface BackupSettings {
  /** basebackup: pg_basebackup; ssh: file-level copy over SSH (src/backup-ssh). */
  readonly method: 'basebackup' | 'ssh';
  /** Cron expression (5 fields, or 6 with seconds); absent = only one-off `pgbk backup`. */
  readonly schedule?: string;
  /** IANA time zone the schedule is evaluated in. Default "UTC". */
  readonly timezone: string;
  readonly compression: Compression;
  /** Ask for an immediate checkpoint (pg_basebackup --checkpoint=fast). Default true. */
  readonly fastCheckpoint: boolean;
  /** How long the end of a backup may wait for archive_command to archive its last segment. Default 600. */
  readonly archiveTimeoutSeconds: number;
  /** Method ssh: agent threads hashing and compressing chunks on the database host (default 2). */
  readonly parallel?: number;
}

export interface WalSettings {
  /** push: archive_command into incoming/; stream: pg_receivewal on a slot (run by `pgbk daemon`). */
  readonly method: 'push' | 'stream';
  /** Physical replication slot for stream, when set; default pgbk_<server> (pg/receivewal.ts slotNameFor). */
  readonly slot?: string;
  readonly compression: Compression;
  /** RPO alarm: warn when the newest archived WAL is older than this many seconds. */
  readonly maxLagSeconds?: number;
}

export interface ServerConfig {
  readonly name: string;
  readonly description?: string;
  /** libpq conninfo used for pg_basebackup and SQL probes. */
  readonly connection?: string;
  readonly pgdata?: string;
  readonly ssh?: SshConfig;
  readonly backup: BackupSettings;
  readonly wal: WalSettings;
  readonly retention: RetentionPolicy;
}

export interface Desired {
  /** Absolute path of the config file it came from. */
  readonly configPath: string;
  /** sha256 of the config file's bytes: part of a saved plan's staleness check. */
  readonly configHash: string;
  /** Absolute catalog root. */
  readonly catalog: string;
  /** The OS user that owns the catalog and that pgbk runs as (`user:`); absent = the catalog's owner. */
  readonly user?: string;
  /** Sorted by name. */
  readonly servers: readonly ServerConfig[];
}
