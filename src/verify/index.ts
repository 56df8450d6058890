/**
 * `pgbk verify`: re-read stored backups against backup.json's sha256, run pg_verifybackup on the
 * unpacked tars against the manifest, and read back the WAL each backup needs (and, for `all`,
 * the whole WAL archive) against SHA256SUMS and the cluster's page headers.
 */
export * from './verify-backup.js';
export * from './verify-wal.js';
