/** `pgbk check` output: one line per check (greppable), a hint under each failure; or JSON. */

import type { ServerCheckReport } from '../../check/types.js';
import { allPassed } from '../../check/types.js';
import { plural } from '../../lib/plural.js';

const RED = '\x1b[31m';
const GREEN = '\x1b[32m';
const RESET = '\x1b[0m';

/** `color`: FAILED in red and OK in green (a terminal, or FORCE_COLOR; see src/cli/diag.ts). */
export function renderCheckText(reports: readonly ServerCheckReport[], opts: { readonly color?: boolean } = {}): string {
  const paint = (text: string, code: string): string => (opts.color === true ? `${code}${text}${RESET}` : text);
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(r.server);
    for (const c of r.checks) {
      lines.push(`  ${c.ok ? paint('OK', GREEN) : paint('FAILED', RED)} ${c.name}: ${c.detail}`);
      if (!c.ok && c.hint !== undefined) lines.push(`    hint: ${c.hint}`);
    }
  }
  const failed = reports.reduce((n, r) => n + r.checks.filter((c) => !c.ok).length, 0);
  lines.push(failed === 0 ? 'All checks passed.' : `${plural(failed, 'check')} failed.`);
  return `${lines.join('\n')}\n`;
}

export function renderCheckJson(reports: readonly ServerCheckReport[]): string {
  return `${JSON.stringify({ formatVersion: '1.0', command: 'check', ok: allPassed(reports), servers: reports }, null, 2)}\n`;
}
