/**
 * The human plan (DESIGN.md §5): one block per server, one line per action with a Terraform-like
 * symbol (+ create, ~ change, - delete), warnings as "! code: message", then a summary line.
 * Stable and greppable; colour only when the caller says the output is a terminal.
 * The JSON form (plan-json.ts) is the stable machine interface; it is re-exported here.
 */

import type { Action, ActionKind, Plan } from '../../model/types.js';
import { planSummary } from '../../plan/summary.js';

export { renderPlanJson, parsePlanJson, PLAN_FORMAT_VERSION } from '../../plan/plan-json.js';

export interface RenderTextOptions {
  readonly color: boolean;
}

const RESET = '\x1b[0m';
const BOLD = '\x1b[1m';
const GREEN = '\x1b[32m';
const YELLOW = '\x1b[33m';
const RED = '\x1b[31m';
const MAGENTA = '\x1b[35m';

/** Width of the kind column: the longest kind ("delete-backup", "cleanup-failed" is one longer). */
const KIND_WIDTH = 13;

function symbolOf(kind: ActionKind): { symbol: string; color: string } {
  switch (kind) {
    case 'base-backup':
    case 'restore-drill':
      return { symbol: '+', color: GREEN };
    case 'archive-wal':
    case 'finish-backup':
    case 'quarantine':
      return { symbol: '~', color: YELLOW };
    case 'delete-backup':
    case 'prune-wal':
    case 'cleanup-failed':
    case 'sweep-chunks':
      return { symbol: '-', color: RED };
    default: {
      const unreachable: never = kind;
      throw new Error(`unhandled action kind ${String(unreachable)}`);
    }
  }
}

/** What follows the kind: the most telling of subject and reason for each kind. */
function detailOf(a: Action): string {
  switch (a.kind) {
    case 'base-backup':
      return a.reason;
    case 'restore-drill':
      return `${a.subject}  ${a.reason}`;
    case 'archive-wal':
      return a.subject;
    // Pruning deletes data: the plan says why each time (which backup, or the PITR window, bounds it).
    case 'prune-wal':
    case 'finish-backup':
    case 'delete-backup':
    case 'cleanup-failed':
    case 'quarantine':
    case 'sweep-chunks':
      return `${a.subject}  ${a.reason}`;
    default: {
      const unreachable: never = a;
      throw new Error(`unhandled action ${JSON.stringify(unreachable)}`);
    }
  }
}

function paint(text: string, color: string, enabled: boolean): string {
  return enabled ? `${color}${text}${RESET}` : text;
}

function actionLine(a: Action, color: boolean): string {
  const { symbol, color: c } = symbolOf(a.kind);
  const pad = ' '.repeat(Math.max(0, KIND_WIDTH - a.kind.length));
  return `  ${paint(`${symbol} ${a.kind}`, c, color)}${pad} ${detailOf(a)}`;
}

function count(n: number, singular: string, pluralWord: string): string {
  return `${n} ${n === 1 ? singular : pluralWord}`;
}

export function summaryLine(plan: Plan): string {
  const s = planSummary(plan);
  const parts = [count(s.backupsToTake, 'backup to take', 'backups to take')];
  if (s.backupsToFinish > 0) parts.push(`${s.backupsToFinish} to finish`);
  parts.push(`${s.backupsToDelete} to delete`);
  if (s.failedToCleanUp > 0) parts.push(`${s.failedToCleanUp} failed to clean up`);
  parts.push(`${s.walToArchive} WAL to archive`, `${s.walToPrune} WAL to prune`);
  if (s.filesToQuarantine > 0) parts.push(count(s.filesToQuarantine, 'file to quarantine', 'files to quarantine'));
  if ((s.drillsToRun ?? 0) > 0) parts.push(count(s.drillsToRun ?? 0, 'restore drill to run', 'restore drills to run'));
  return `Plan: ${parts.join(', ')}.`;
}

export function renderPlanText(plan: Plan, options: RenderTextOptions): string {
  const { color } = options;
  const servers = [...new Set([...plan.actions.map((a) => a.server), ...plan.warnings.map((w) => w.server)])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const lines: string[] = [];
  for (const server of servers) {
    lines.push(paint(server, BOLD, color));
    for (const a of plan.actions) if (a.server === server) lines.push(actionLine(a, color));
    for (const w of plan.warnings) {
      if (w.server === server) lines.push(`  ${paint(`! ${w.code}:`, MAGENTA, color)} ${w.message}`);
    }
  }
  lines.push(plan.actions.length === 0 ? 'No changes.' : summaryLine(plan));
  return `${lines.join('\n')}\n`;
}
