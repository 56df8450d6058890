import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { apply } from '../apply/apply.js';
import type { ActionResult } from '../apply/context.js';
import { parseSavedPlan } from '../apply/saved-plan.js';
import { DURATION_PATTERN, formatDuration, parseDuration, tooLargeText } from '../config/duration.js';
import { PgbkError } from '../errors.js';
import { renderPlanJson, renderPlanText } from './render/plan-text.js';
import type { Plan, WarningCode } from '../model/types.js';
import { progressFactory, type ProgressFactory } from '../lib/progress.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { abortOnSignals, loadDesired, logTo } from './load.js';
import { parseCommand, parseTimeFlag } from './options.js';
import { APPLY_OPTIONS } from './commands.js';
import { diag, useColor } from './diag.js';
import { writeJson } from './json-output.js';
import { reportError } from './report-error.js';
import { mark } from '../lib/profile.js';

/**
 * A duration option in milliseconds. Too large (beyond 100 years, see config/duration.ts) or
 * shorter than `minSeconds` is a usage error naming the option: these values end up in timers.
 */
export function durationFlag(flag: string, value: string, minSeconds = 0): number {
  if (!new RegExp(DURATION_PATTERN).test(value)) {
    throw new PgbkError('USAGE', `${flag} ${value}: expected a duration such as 30s, 5m, 1h`);
  }
  let seconds: number;
  try {
    seconds = parseDuration(value);
  } catch {
    throw new PgbkError('USAGE', `${flag} ${value}: ${tooLargeText(value)}`);
  }
  if (seconds < minSeconds) throw new PgbkError('USAGE', `${flag} ${value}: must be at least ${formatDuration(minSeconds)}`);
  return seconds * 1000;
}

/** Progress of base backups on a terminal (stderr), or when PGBK_PROGRESS=1. */
export function progressOption(io: CliIo): { progress?: ProgressFactory } {
  const progress = progressFactory(io.stderr, io.env);
  return progress === undefined ? {} : { progress };
}

function resultLine(r: ActionResult): string {
  return `${r.action.server}: ${r.action.kind} ${r.action.subject}: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`;
}

/**
 * The plan's warnings that --quiet still prints (stderr: cron mails it): each says that WAL or
 * backups are at risk right now, and none goes away by waiting. The others are states that pass
 * (a restore using a backup, the first backup still to come) or settings (minRedundancy holding
 * a backup) that would mail the same line every run.
 */
const QUIET_ALERTS: ReadonlySet<WarningCode> = new Set<WarningCode>([
  'wal-gap',
  'rpo-exceeded',
  'archiving-refused',
  'backup-unrestorable',
  'newer-timeline',
  'server-unreachable',
  'catalog-missing',
  'quarantined-files',
  'drill-failed',
  'rpo-objective',
  'rto-objective',
]);

/** `pgbk apply [PLANFILE]`: observe, plan, print the plan, execute it; exit 1 if anything failed. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('apply', args, APPLY_OPTIONS);
  if (positionals.length > 1) throw new PgbkError('USAGE', `apply: takes at most one plan file, got ${positionals.length} arguments`);
  // --quiet (cron): nothing on stdout and no progress lines; failures still go to stderr.
  const quiet = values.quiet === true;
  if (quiet && values.json === true) throw new PgbkError('USAGE', 'apply: --quiet and --json conflict (--json prints the result on stdout)');
  const desired = await loadDesired(values.config, io, { s3: true });
  mark('config loaded');
  const planFile = positionals[0];
  const saved = planFile === undefined ? undefined : parseSavedPlan(await readFile(path.resolve(io.cwd, planFile), 'utf8'), planFile);
  if (saved !== undefined && values.now !== undefined)
    throw new PgbkError('USAGE', 'apply: --now cannot be combined with a saved plan (the plan has its own time)');
  const now = saved !== undefined ? new Date(saved.plan.now) : values.now === undefined ? new Date() : parseTimeFlag('--now', values.now);
  const json = values.json === true;
  const report = await apply(desired, {
    now,
    ...(values.server === undefined ? {} : { servers: values.server }),
    lockTimeoutMs: durationFlag('--lock-timeout', values['lock-timeout']),
    savedMaxAgeMs: durationFlag('--plan-max-age', values['plan-max-age']),
    log: quiet ? () => undefined : logTo(io),
    signal: abortOnSignals(io),
    ...(quiet ? {} : progressOption(io)),
    ...(saved === undefined ? {} : { saved }),
    onPlan: (plan: Plan, round: number) => {
      if (json || quiet) return;
      if (round > 1) io.stdout.write('\nFollow-up plan (a backup became DONE, so retention and WAL pruning were re-planned):\n');
      io.stdout.write(renderPlanText(plan, { color: useColor(io) }));
    },
  });
  for (const e of report.serverErrors) reportError(e, io, false);
  const failed = report.results.filter((r) => r.outcome === 'failed');
  if (json) {
    const planJson = JSON.parse(renderPlanJson(report.plan)) as Record<string, unknown>;
    writeJson(io, 'apply', {
      ...planJson,
      results: report.results.map((r) => ({ server: r.action.server, kind: r.action.kind, subject: r.action.subject, outcome: r.outcome, detail: r.detail })),
      errors: report.serverErrors.map((e) => ({ server: e.server, code: e.code, message: e.message })),
    });
  } else if (quiet) {
    for (const w of report.plan.warnings) if (QUIET_ALERTS.has(w.code)) diag(io, 'warn', `${w.server}: ${w.code}: ${w.message}`);
    for (const r of failed) diag(io, 'error', resultLine(r));
  } else {
    for (const r of report.results) io.stdout.write(`${resultLine(r)}\n`);
    if (report.plan.actions.length > 0 || report.serverErrors.length > 0) {
      const done = report.results.filter((r) => r.outcome === 'done').length;
      const skipped = report.results.filter((r) => r.outcome === 'skipped').length;
      // A server that could not be prepared is a failure too: its actions never ran.
      const notPrepared = report.serverErrors.length;
      const unprepared =
        notPrepared === 0
          ? ''
          : ` (${notPrepared} server${notPrepared === 1 ? '' : 's'} could not be prepared: ${report.serverErrors.map((e) => e.server ?? '?').join(', ')})`;
      io.stdout.write(`Apply: ${done} done, ${skipped} skipped, ${failed.length + notPrepared} failed${unprepared}.\n`);
    }
  }
  return failed.length > 0 || report.serverErrors.length > 0 ? EXIT.failure : EXIT.ok;
}
