/* Generated from schema/pgbk.schema.json by json-schema-to-typescript. Do not edit; run npm run gen:types. */

/**
 * pgbk configuration: which PostgreSQL servers to back up, where the catalog lives, base-backup schedules, WAL archiving and retention.
 */
export interface PgbkConfig {
  /**
   * Where the backup catalog lives: a local directory (a relative path is resolved against the directory of this file; ~ is expanded), or s3://BUCKET/PREFIX for an S3-compatible object store (AWS S3, Ceph radosgw, MinIO, ...), configured under s3.
   */
  catalog: string;
  s3?: S3;
  /**
   * OS user that owns the catalog and that pgbk runs as. Started as root, pgbk switches to this user before it touches anything (restore keeps root for the restored files' owners and writes the catalog as this user); started as another user, commands that write the catalog refuse to run. Default: the owner of the catalog directory, or before it exists the owner of its nearest existing parent.
   */
  user?: string;
  defaults?: Defaults;
  servers: Servers;
}
/**
 * How to reach the object store of catalog: s3://BUCKET/PREFIX. Credentials are never set here: pgbk takes them from its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or from the AWS shared credentials and config files (~/.aws/credentials, ~/.aws/config; AWS_PROFILE or profile below), and never prints them.
 */
export interface S3 {
  /**
   * URL of an S3-compatible service, scheme and host[:port] only, e.g. https://rgw.example.net:7480. Default: AWS S3 in region.
   */
  endpoint?: string;
  /**
   * Signing region (SigV4). Default us-east-1, which S3-compatible services usually accept.
   */
  region?: string;
  /**
   * Address buckets in the path (https://host/BUCKET/KEY) instead of the host name (https://BUCKET.host/KEY). Default: true with an endpoint (S3-compatible services seldom have wildcard DNS and certificates), false for AWS S3.
   */
  pathStyle?: boolean;
  tls?: S3Tls;
  /**
   * Named profile in the AWS shared credentials/config files to take credentials from. Default: AWS_PROFILE, then the environment, then the default profile.
   */
  profile?: string;
  /**
   * Local directory that holds, per server, incoming/ (where a plain archive_command copies WAL) and streaming/ (pg_receivewal's directory) until apply or the daemon stores the WAL in the bucket. Only needed for those two ways of getting WAL: pgbk wal-push writes straight to the bucket. A relative path is resolved against the directory of this file; ~ is expanded.
   */
  spool?: string;
}
/**
 * TLS settings for an https endpoint.
 */
export interface S3Tls {
  /**
   * Verify the server's certificate and host name. Default true; false only for a test store with a self-signed certificate (use caFile instead where possible).
   */
  verify?: boolean;
  /**
   * PEM file with the CA certificate(s) to trust for this endpoint, instead of the bundled public roots (as AWS_CA_BUNDLE or curl's --cacert; put more than one certificate in the file to trust more). A relative path is resolved against the directory of this file; ~ is expanded.
   */
  caFile?: string;
}
/**
 * Settings every server inherits; a server's own setting wins, key by key.
 */
export interface Defaults {
  /**
   * Compression for base backups and WAL when neither defaults.backup, defaults.wal nor the server says otherwise. Default zstd.
   */
  compression?: "zstd" | "gzip" | "none";
  retention?: Retention;
  backup?: BackupDefaults;
  wal?: WalDefaults;
  drill?: Drill;
  objectives?: Objectives;
}
/**
 * Retention policy (Barman-compatible). Set redundancy, recoveryWindow or both; each key not set here is taken from defaults.retention. A backup is kept if either rule keeps it.
 */
export interface Retention {
  /**
   * Keep the newest N completed backups (Barman REDUNDANCY).
   */
  redundancy?: number;
  /**
   * Keep what is needed to recover to any point in this window (Barman RECOVERY WINDOW): every backup that ended inside it plus the newest one before it.
   */
  recoveryWindow?: string;
  /**
   * Keep WAL for point-in-time recovery only this far back (e.g. 7d). The newest backup that ended before the window is its base; older retained backups keep just the WAL they need to be consistent (restorable to their end, not to points between them). Absent: WAL is kept from the oldest retained backup on.
   */
  pitrWindow?: string;
  /**
   * Never delete a backup if fewer than this many completed backups would remain. Default 1; at most redundancy.
   */
  minRedundancy?: number;
}
/**
 * Base-backup settings every server inherits unless it sets its own.
 */
export interface BackupDefaults {
  /**
   * Cron schedule for servers that set none (5 fields: minute hour day-of-month month day-of-week, or 6 with leading seconds). Restricting both day-of-month and day-of-week is refused (cron libraries disagree on its meaning).
   */
  schedule?: string;
  /**
   * IANA time zone the schedule is evaluated in, e.g. UTC, Europe/Berlin, America/New_York. Default UTC.
   */
  timezone?: string;
  /**
   * Compression of base backups. Default: defaults.compression, then zstd.
   */
  compression?: "zstd" | "gzip" | "none";
  /**
   * Ask PostgreSQL for an immediate checkpoint at backup start (pg_basebackup --checkpoint=fast) instead of waiting for the next scheduled one. Default true.
   */
  fastCheckpoint?: boolean;
  /**
   * How long a base backup waits at its end for PostgreSQL to archive its last WAL segment, e.g. 10m; the copy itself never waits for the archiver. After that time pgbk stops waiting and the backup stays WAITING_FOR_WAL until its WAL is archived (both methods). Default 10m.
   */
  archiveTimeout?: string;
}
/**
 * WAL archiving settings every server inherits unless it sets its own.
 */
export interface WalDefaults {
  /**
   * Compression of archived WAL. Default: defaults.compression, then zstd.
   */
  compression?: "zstd" | "gzip" | "none";
  /**
   * RPO alarm: warn when the newest archived WAL is older than this duration.
   */
  maxLag?: string;
}
/**
 * Restore drills (issue 14): on a schedule, `pgbk apply`/`pgbk daemon` restore a backup into a scratch directory on the backup host (or on drill.host over SSH), start PostgreSQL on it (archiving off, WAL from the catalog through pgbk wal-fetch), wait until it is promoted, run the check, stop it, remove the copy and record the result in the catalog (<server>/drills/). Each key not set here is taken from defaults.drill; schedule and scratchDir must be set in one of them.
 */
export interface Drill {
  /**
   * When a drill is due: cron expression (5 fields, or 6 with leading seconds) evaluated in timezone, like backup.schedule. A missed run is caught up once; a failed drill is not retried before the next fire time (it is reported by plan, status and check).
   */
  schedule?: string;
  /**
   * IANA time zone the schedule is evaluated in. Default: the server's backup.timezone, then UTC.
   */
  timezone?: string;
  /**
   * What to restore: latest (the newest backup and every archived WAL segment, then promote) or random (a pseudo-random LSN inside the recoverable window, chosen by plan from the schedule slot, so older backups and WAL are exercised too). Default latest.
   */
  target?: "latest" | "random";
  /**
   * Directory on the backup host (or, with host, an absolute path on the drill host) under which each drill restores into its own subdirectory (<server>-<id>), removed afterwards. Must not be inside the catalog or the server's pgdata (on a drill host: real paths compared there). A relative path is resolved against the directory of this file; ~ is expanded.
   */
  scratchDir?: string;
  /**
   * Run the drill on a drill host over SSH instead of the backup host: ssh://USER@HOST[:PORT] (host key verified). The backup is restored onto it the way `pgbk restore --remote` does, PostgreSQL is started there (as USER, which must not be root) with archiving off and a unix socket in the scratch directory, the check runs there with psql, and the copy is stopped by its PID and removed. scratchDir is then an absolute path on that host.
   */
  host?: string;
  /**
   * Private key for drill.host (default as for servers.<name>.ssh). A relative path is resolved against the directory of this file; ~ is expanded.
   */
  identityFile?: string;
  /**
   * known_hosts file that verifies drill.host's key (default ~/.ssh/known_hosts). A relative path is resolved against the directory of this file; ~ is expanded.
   */
  knownHosts?: string;
  /**
   * The drill fails (and is recorded as timed out) when restore, replay and check together take longer than this, e.g. 30m. Default 1h.
   */
  timeLimit?: string;
  check?: DrillCheck;
  /**
   * Extra PostgreSQL settings for the drill copy (e.g. shared_buffers: 128MB when the drill host has less memory than the database host). port, listen_addresses, unix_socket_directories, archive_mode, hba_file and ssl are always set by pgbk.
   */
  settings?: {
    [k: string]: string;
  };
}
/**
 * What must hold on the started copy.
 */
export interface DrillCheck {
  /**
   * A query that must return exactly one row whose first column is true, e.g. "SELECT count(*) > 0 FROM orders". Default: SELECT true (the copy opened and answered).
   */
  sql?: string;
  /**
   * Database the sql runs in. Default postgres.
   */
  database?: string;
  /**
   * Role the drill connects as (over a private unix socket with trust authentication; the copy's pg_hba.conf is not used). Default postgres.
   */
  user?: string;
  /**
   * Databases whose btree indexes are checked with amcheck's bt_index_check (the extension is created in the copy if missing).
   */
  amcheck?: string[];
}
/**
 * Recovery objectives (issue 14): plan and check compare them with what was measured and warn with numbers when they are not met. Each key not set here is taken from defaults.objectives.
 */
export interface Objectives {
  /**
   * Recovery point objective, e.g. 5m: the newest archived (or streamed) WAL must not be older than this.
   */
  rpo?: string;
  /**
   * Recovery time objective, e.g. 30m: the last restore drill's restore + replay time must not exceed it, nor the estimate for the newest backup (its size and the WAL after it at the rates the last drill measured).
   */
  rto?: string;
}
/**
 * The PostgreSQL servers to back up, by name. A name becomes a directory in the catalog: letters, digits, '_', '.', '-', starting with a letter or digit.
 */
export interface Servers {
  [k: string]: Server;
}
/**
 * One PostgreSQL cluster to back up.
 *
 * This interface was referenced by `Servers`'s JSON-Schema definition
 * via the `patternProperty` "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$".
 */
export interface Server {
  /**
   * Free text shown in listings.
   */
  description?: string;
  /**
   * libpq connection string (conninfo) for pg_basebackup and SQL probes, e.g. "host=db1 port=5432 user=pgbk dbname=postgres". Never put a password here: use PGPASSFILE or the environment.
   */
  connection?: string;
  /**
   * Absolute path of the data directory on the database host.
   */
  pgdata?: string;
  ssh?: Ssh;
  backup?: ServerBackup;
  wal?: ServerWal;
  retention?: Retention;
  drill?: Drill;
  objectives?: Objectives;
}
/**
 * How to reach the database host over SSH (for WAL push and file access). host and user are required.
 */
export interface Ssh {
  /**
   * Host name or address of the database host.
   */
  host: string;
  /**
   * SSH port. Default 22.
   */
  port?: number;
  /**
   * SSH user on the database host (usually postgres).
   */
  user: string;
  /**
   * Private key file. ~ is expanded; a relative path is resolved against the directory of this file.
   */
  identityFile?: string;
  /**
   * known_hosts file used to verify the host key (an unknown or changed key is refused). ~ is expanded; a relative path is resolved against the directory of this file.
   */
  knownHosts?: string;
  /**
   * SSH-only mode (backup.method ssh without connection): libpq connection string psql uses on the database host, e.g. "port=5433 dbname=postgres". Default: psql's defaults for the SSH user (local socket, port 5432).
   */
  psqlConnection?: string;
  /**
   * Command that runs pgbk on the database host, split on spaces (e.g. "/usr/bin/node /opt/pgbk/dist/src/cli.js"). Backup method ssh starts `pgbk backup-agent` with it to send only changed chunks; when it cannot be started, the backup falls back to a tar stream (every changed file sent whole). Default "pgbk".
   */
  pgbk?: string;
}
/**
 * How and when base backups of this server are taken.
 */
export interface ServerBackup {
  /**
   * basebackup: pg_basebackup over the replication protocol. ssh: file-level copy of pgdata over SSH (needs ssh and pgdata), incremental by file (unchanged files are hard-linked from the previous backup); without connection, pg_backup_start/stop run through psql on the database host (SSH-only mode).
   */
  method?: "basebackup" | "ssh";
  /**
   * When base backups are due: cron expression (5 fields: minute hour day-of-month month day-of-week, or 6 with leading seconds) evaluated in timezone. A missed run is caught up once. Without a schedule (here or in defaults.backup) only one-off `pgbk backup` runs take backups. Restricting both day-of-month and day-of-week is refused (cron libraries disagree on its meaning).
   */
  schedule?: string;
  /**
   * IANA time zone the schedule is evaluated in, e.g. UTC, Europe/Berlin, America/New_York. Default UTC.
   */
  timezone?: string;
  /**
   * Compression of this server's base backups. Default: defaults.backup.compression, then defaults.compression, then zstd.
   */
  compression?: "zstd" | "gzip" | "none";
  /**
   * Ask PostgreSQL for an immediate checkpoint at backup start (pg_basebackup --checkpoint=fast). Default true.
   */
  fastCheckpoint?: boolean;
  /**
   * How long a base backup waits at its end for PostgreSQL to archive its last WAL segment, e.g. 10m (then left WAITING_FOR_WAL until its WAL arrives). Default: defaults.backup.archiveTimeout, then 10m.
   */
  archiveTimeout?: string;
  /**
   * Method ssh: threads of the backup agent on the database host that hash and compress chunks at once (each a core's worth of work). Default 2.
   */
  parallel?: number;
}
/**
 * How this server's WAL reaches the catalog.
 */
export interface ServerWal {
  /**
   * push: PostgreSQL's archive_command (pgbk wal-push) delivers each segment into the catalog's incoming/ directory. stream: `pgbk daemon` keeps pg_receivewal running on a physical replication slot into the catalog's streaming/ directory (RPO of seconds; archive_command may stay on as well, duplicates are recognised).
   */
  method?: "push" | "stream";
  /**
   * stream: name of the physical replication slot pg_receivewal uses (created if missing). Default pgbk_<server name> with characters other than a-z, 0-9 and _ replaced by _.
   */
  slot?: string;
  /**
   * Compression of this server's archived WAL. Default: defaults.wal.compression, then defaults.compression, then zstd.
   */
  compression?: "zstd" | "gzip" | "none";
  /**
   * RPO alarm: warn when the newest archived WAL is older than this duration (e.g. 5m). Default: defaults.wal.maxLag; no alarm if neither is set.
   */
  maxLag?: string;
}
