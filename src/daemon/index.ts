/**
 * The daemon: one long-running process that drives the same observe → plan → apply loop as
 * `pgbk apply`, woken by node-cron (schedules), chokidar (a file arrived in incoming/) and a
 * periodic full reconcile. Wake-ups only decide *when* to reconcile; *what* to do always comes
 * from plan(), so a missed or duplicate wake-up can never lose WAL or take a second backup.
 */
export * from '../lib/logger.js';
export * from './server-runner.js';
export * from './daemon.js';
export * from './receiver.js';
