/** `pgbk check` output: one line per check (greppable), a hint under each failure; or JSON. */

import type { ServerCheckReport } from './types.js';
import { allPassed } from './types.js';

export function renderCheckText(reports: readonly ServerCheckReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(r.server);
    for (const c of r.checks) {
      lines.push(`  ${c.ok ? 'OK' : 'FAILED'} ${c.name}: ${c.detail}`);
      if (!c.ok && c.hint !== undefined) lines.push(`    hint: ${c.hint}`);
    }
  }
  const failed = reports.reduce((n, r) => n + r.checks.filter((c) => !c.ok).length, 0);
  lines.push(failed === 0 ? 'All checks passed.' : `${failed} check(s) failed.`);
  return `${lines.join('\n')}\n`;
}

export function renderCheckJson(reports: readonly ServerCheckReport[]): string {
  return `${JSON.stringify({ formatVersion: 1, ok: allPassed(reports), servers: reports }, null, 2)}\n`;
}
