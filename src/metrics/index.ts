/**
 * `pgbk metrics`: per-server numbers from the catalog (and optionally `pgbk check` results) in the
 * Prometheus text format, printed or written atomically for node_exporter's textfile collector.
 */
export * from './render.js';
export * from './collect.js';
