import { selectServers } from '../config/select-servers.js';
import { checkServer } from '../check/run-checks.js';
import { renderCheckJson, renderCheckText } from './render/check.js';
import { allPassed, fail, type ServerCheckReport } from '../check/types.js';
import { toPgbkError } from '../errors.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { durationFlag } from './apply.js';
import { CHECK_OPTIONS } from './commands.js';
import { useColor } from './diag.js';

/**
 * `pgbk check [SERVER...] [--json]`: health checks with OK/FAILED and a hint; exit 1 if any fails.
 * An invalid configuration is itself a failed check (reported the same way), not a crash.
 */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('check', args, CHECK_OPTIONS);
  const walTimeoutMs = durationFlag('--wal-timeout', values['wal-timeout']);
  const json = values.json === true;
  let reports: ServerCheckReport[];
  try {
    const desired = await loadDesired(values.config, io, { s3: true });
    reports = [];
    for (const s of selectServers(desired, positionals)) {
      reports.push(
        await checkServer(s, {
          catalog: desired.catalog,
          now: new Date(),
          env: io.env,
          configPath: desired.configPath,
          walTimeoutMs,
          ...(desired.s3 === undefined ? {} : { s3: desired.s3 }),
        }),
      );
    }
    // The configuration passed if we got here: say so once, first.
    if (reports[0] !== undefined) {
      reports[0] = { ...reports[0], checks: [{ name: 'configuration', ok: true, detail: `valid (${desired.configPath})` }, ...reports[0].checks] };
    }
  } catch (err) {
    const e = toPgbkError(err);
    if (e.code !== 'CONFIG') throw err;
    reports = [{ server: '(configuration)', checks: [fail('configuration', e.message, e.hint ?? 'run pgbk validate and fix the file')] }];
  }
  io.stdout.write(json ? renderCheckJson(reports) : renderCheckText(reports, { color: useColor(io) }));
  return allPassed(reports) ? EXIT.ok : EXIT.failure;
}
