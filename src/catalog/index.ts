/**
 * The on-disk catalog (DESIGN.md §4): one directory per server holding server.json (the cluster's
 * identity), base backups with their backup.json, the WAL archive with per-directory SHA256SUMS,
 * incoming/ for archive_command, errors/ for quarantined files, and the writer lock. Every write
 * is atomic (temp → fsync → rename/link → fsync dir) and archived WAL is never overwritten, so a
 * crash at any instruction leaves a valid catalog. Readers need no lock.
 *
 * Those reads and writes go through the repository port (repository.ts), whose driver open.ts picks
 * for the configured catalog (posix/ today); what still lives in local directories is listed there.
 */

export * from './layout.js';
export * from './open.js';
export * from '../lib/atomic.js';
export * from './compress.js';
export * from './identity.js';
export * from './backups.js';
export * from './lock.js';
export * from './wal-text-files.js';
export * from './wal-archive.js';
export * from './incoming.js';
export * from './quarantine.js';
export * from './streaming.js';
export * from './leftovers.js';
