/**
 * Configuration: find pgbk.yaml (cosmiconfig), parse it keeping line numbers (yaml), validate it
 * against schema/pgbk.schema.json (ajv) and the rules a schema cannot express (cron, time zones,
 * retention, secrets), and resolve defaults into `Desired`, the plain data the planner and the
 * executors consume. Also the small pure helpers other folders share: durations, cron previous
 * fire times (used by the pure planner), and conninfo redaction for messages.
 */

export { loadConfig, type LoadConfigOptions } from './load.js';
export { parseDuration, formatDuration } from './duration.js';
export { validateCron, validateTimezone, previousFireTime } from './cron.js';
export { redactConninfo, hasPassword } from './conninfo.js';
export type {
  Compression,
  SshConfig,
  RetentionPolicy,
  BackupSettings,
  WalSettings,
  ServerConfig,
  Desired,
  S3RepositoryConfig,
} from './resolved.js';
