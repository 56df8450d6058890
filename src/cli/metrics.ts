import path from 'node:path';
import { PgbkError } from '../errors.js';
import { metricsText, writeMetricsFile } from '../metrics/collect.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { METRICS_OPTIONS } from './commands.js';
import { writeJson } from './json-output.js';
import { parsePrometheusText } from '../metrics/parse-text.js';

/** `pgbk metrics [--output FILE] [--checks]`: Prometheus text format on stdout or written atomically to FILE. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('metrics', args, METRICS_OPTIONS);
  if (positionals.length > 0) throw new PgbkError('USAGE', `metrics: takes no arguments, got ${positionals.join(' ')}`);
  const desired = await loadDesired(values.config, io, { s3: true });
  const text = await metricsText(desired, { withChecks: values.checks === true, env: io.env, now: new Date() });
  if (values.json === true) {
    if (values.output !== undefined) throw new PgbkError('USAGE', 'metrics: --json and --output conflict (the file is in Prometheus text format)');
    writeJson(io, 'metrics', { metrics: parsePrometheusText(text) });
  } else if (values.output === undefined) io.stdout.write(text);
  else await writeMetricsFile(path.resolve(io.cwd, values.output), text);
  return EXIT.ok;
}
