import { writeFileAtomic } from '../catalog/index.js';
import { selectServers } from '../config/select-servers.js';
import { planBasis, serializeSavedPlan } from '../apply/saved-plan.js';
import { observe } from '../observe/index.js';
import { plan as makePlan } from '../plan/plan.js';
import { renderPlanJson, renderPlanText } from '../plan/render.js';
import path from 'node:path';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, parseTimeFlag } from './options.js';
import { reportError } from './report-error.js';

/** `pgbk plan`: observe, plan, print. Never changes the catalog. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let debug = false;
  try {
    const { values } = parseCommand('plan', args, {
      server: { type: 'string', multiple: true },
      now: { type: 'string' },
      'detailed-exitcode': { type: 'boolean', default: false },
      out: { type: 'string', short: 'o' },
    });
    debug = values.debug === true;
    const desired = await loadDesired(values.config, io);
    const now = values.now === undefined ? new Date() : parseTimeFlag('--now', values.now);
    const servers = selectServers(desired, values.server);
    const observed = await observe(desired, servers.map((s) => s.name), { contact: true });
    const plan = makePlan({ ...desired, servers }, observed, now);
    io.stdout.write(values.json === true ? renderPlanJson(plan) : renderPlanText(plan, { color: io.isTTY }));
    if (values.out !== undefined) {
      const basis = planBasis(desired.configHash, observed);
      const file = path.resolve(io.cwd, values.out);
      await writeFileAtomic(file, serializeSavedPlan({ plan, basis }));
      io.stderr.write(`plan saved to ${file}; run: pgbk apply ${values.out}\n`);
    }
    if (values['detailed-exitcode'] === true) return plan.actions.length > 0 ? EXIT.changes : EXIT.ok;
    return EXIT.ok;
  } catch (err) {
    return reportError(err, io, debug);
  }
}
