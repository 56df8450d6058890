/**
 * plan/ is pgbk's pure core: given the desired configuration, the observed catalog and a `now`, it
 * decides what should happen — which backups are due, which are expired, which WAL can be archived,
 * finished against or pruned — and says why, as a `Plan` of typed actions and warnings. Nothing here
 * touches the clock, the file system, the network or the process (a unit test scans the imports),
 * so every rule about schedules, retention and WAL continuity is tested with plain data. The
 * executors in apply/ carry the plan out; plan-json.ts is its versioned JSON form (the text renderer lives in cli/render/).
 */

export type * from '../model/types.js';
export { ACTION_ORDER } from '../model/types.js';
export { plan, planServer } from './plan.js';
export { planSummary, type PlanSummary } from './summary.js';
export { isBackupDue, type DueDecision } from './schedule.js';
export { planRetention, type RetentionDecision, type RetentionEntry } from './retention.js';
export { planWal, type WalDecision } from './wal.js';
export { planIncoming, type IncomingDecision } from './incoming.js';
export { renderPlanJson, parsePlanJson, PLAN_FORMAT_VERSION } from './plan-json.js';
