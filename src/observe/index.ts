/**
 * Observers: build the `Observed` snapshot the planner reads, from the catalog on disk (and, for
 * identity, from the live server). Read-only: a STARTED backup whose owner died is *reported* as
 * FAILED here; apply persists that under the server lock (apply/repair.ts).
 */
export { effectiveBackup, observe, observeContact, observeServer, observedHash, type ObserveOptions } from './observe.js';
