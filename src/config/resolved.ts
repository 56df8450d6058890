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
  /**
   * Keep WAL for point-in-time recovery only this far back (issue 14); older retained backups keep
   * just the WAL they need to be consistent. Absent: PITR from the oldest retained backup on.
   */
  readonly pitrWindowSeconds?: number;
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

/** Restore drills (issue 14): executed by src/drill/, planned by plan/drill.ts. */
export interface DrillSettings {
  /** Cron expression, like backup.schedule. */
  readonly schedule: string;
  /** IANA time zone of the schedule. Default: backup.timezone. */
  readonly timezone: string;
  /** latest: newest backup, all WAL; random: a pseudo-random LSN inside the recoverable window. */
  readonly target: 'latest' | 'random';
  /** Absolute directory each drill restores under (its own subdirectory, removed afterwards); on `host` when set. */
  readonly scratchDir: string;
  /** drill.host: the drill host reached over SSH (src/drill/remote.ts); absent: the backup host. */
  readonly host?: DrillHost;
  /** Restore + replay + check must finish within this. Default 3600. */
  readonly timeLimitSeconds: number;
  readonly check: {
    /** Must return one row whose first column is true. Default "SELECT true". */
    readonly sql: string;
    readonly database: string;
    readonly user: string;
    /** Databases whose btree indexes bt_index_check verifies. */
    readonly amcheck: readonly string[];
  };
  /** Extra settings on the drill copy's command line. */
  readonly settings: Readonly<Record<string, string>>;
}

export interface DrillHost {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly identityFile?: string;
  readonly knownHosts?: string;
  /** ssh://USER@HOST[:PORT] as configured, for messages and the drill record. */
  readonly url: string;
}

/** Recovery objectives (issue 14), compared with measurements by plan/objectives.ts. */
export interface Objectives {
  readonly rpoSeconds?: number;
  readonly rtoSeconds?: number;
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
  /** Absent: no drills for this server. */
  readonly drill?: DrillSettings;
  /** Absent (or empty): no objectives declared. */
  readonly objectives?: Objectives;
}

/**
 * An object-storage repository (`catalog: s3://BUCKET/PREFIX` plus the `s3:` section). Credentials
 * are deliberately absent: they come only from the environment or the AWS shared credentials and
 * config files (the SDK's default provider chain, optionally a named `profile`), never from the YAML.
 */
export interface S3RepositoryConfig {
  /** The catalog URL as written, e.g. "s3://backups/pgbk" (for messages). */
  readonly url: string;
  readonly bucket: string;
  /** Key prefix inside the bucket: '' or ending in '/' (e.g. "pgbk/"). */
  readonly prefix: string;
  /** http(s)://host[:port] of an S3-compatible service; absent = AWS S3 for `region`. */
  readonly endpoint?: string;
  /** SigV4 signing region. Default us-east-1. */
  readonly region: string;
  /** Path-style addressing (https://host/BUCKET/KEY) instead of virtual-hosted (https://BUCKET.host/KEY). */
  readonly pathStyle: boolean;
  /** Verify the server's TLS certificate (https endpoints). Default true. */
  readonly verifyTls: boolean;
  /** Absolute path of a PEM file with the CA certificate(s) to trust: the endpoint's whole trust (Node's bundled public roots are not used beside it). */
  readonly caFile?: string;
  /** Named profile in the AWS shared credentials/config files; absent = the default chain. */
  readonly profile?: string;
  /**
   * Absolute local directory for incoming/ and streaming/ (<spool>/<server>/incoming, …): WAL that a
   * plain archive_command copies or pg_receivewal streams waits there until it is stored in the
   * bucket. Absent: no local spool (wal-push writes straight to the bucket).
   */
  readonly spool?: string;
}

export interface Desired {
  /** Absolute path of the config file it came from. */
  readonly configPath: string;
  /** sha256 of the config file's bytes: part of a saved plan's staleness check. */
  readonly configHash: string;
  /** Absolute catalog root; for an object-storage catalog, its URL as written ("s3://…"), see `s3`. */
  readonly catalog: string;
  /** Present when the catalog is in object storage (`catalog: s3://…`). */
  readonly s3?: S3RepositoryConfig;
  /** The OS user that owns the catalog and that pgbk runs as (`user:`); absent = the catalog's owner. */
  readonly user?: string;
  /** Sorted by name. */
  readonly servers: readonly ServerConfig[];
}
