/**
 * `pgbk check`: per-server health checks (live PostgreSQL settings and archiver state, streaming
 * slot and receiver, SSH, catalog space, backup age, redundancy, WAL continuity, quarantine), each
 * OK or FAILED with a hint. Checks that do not apply to a server's configuration are not produced.
 */
export * from './types.js';
export * from './run-checks.js';
