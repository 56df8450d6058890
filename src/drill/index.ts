/**
 * Restore drills (issue 14), the executor side: plan/drill.ts decides when one is due and what it
 * restores; run-drill.ts restores, starts, checks, stops and records it (postgres.ts, check.ts).
 */
export { reapInterruptedDrills } from './reap.js';
export { executeRestoreDrill } from './run-drill.js';
