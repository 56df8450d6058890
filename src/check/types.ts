/**
 * `pgbk check`: named health checks per server, each OK or FAILED with a detail and, on failure, a
 * hint that says what to do. Checks that do not apply to a server's configuration are not produced
 * at all (so they can never show up as failures).
 */

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** What to do about a failure; absent on success. */
  readonly hint?: string;
}

export interface ServerCheckReport {
  readonly server: string;
  readonly checks: readonly CheckResult[];
}

export function pass(name: string, detail: string): CheckResult {
  return { name, ok: true, detail };
}

export function fail(name: string, detail: string, hint: string): CheckResult {
  return { name, ok: false, detail, hint };
}

export function allPassed(reports: readonly ServerCheckReport[]): boolean {
  return reports.every((r) => r.checks.every((c) => c.ok));
}
