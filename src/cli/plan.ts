import { writeFileAtomic } from '../catalog/index.js';
import { selectServers } from '../config/select-servers.js';
import { planBasis, serializeSavedPlan } from '../apply/saved-plan.js';
import { observe } from '../observe/index.js';
import { plan as makePlan } from '../plan/plan.js';
import { renderPlanJson, renderPlanText } from './render/plan-text.js';
import path from 'node:path';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, parseTimeFlag } from './options.js';
import { PLAN_OPTIONS } from './commands.js';
import { diag, useColor } from './diag.js';
import { writeJson } from './json-output.js';

/** `pgbk plan`: observe, plan, print. Never changes the catalog. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('plan', args, PLAN_OPTIONS);
  const desired = await loadDesired(values.config, io, { s3: true });
  const now = values.now === undefined ? new Date() : parseTimeFlag('--now', values.now);
  const servers = selectServers(desired, values.server);
  const observed = await observe(
    desired,
    servers.map((s) => s.name),
    { contact: true },
  );
  const plan = makePlan({ ...desired, servers }, observed, now);
  if (values.json === true) writeJson(io, 'plan', JSON.parse(renderPlanJson(plan)) as Record<string, unknown>);
  else io.stdout.write(renderPlanText(plan, { color: useColor(io) }));
  if (values.out !== undefined) {
    const basis = planBasis(desired.configHash, observed);
    const file = path.resolve(io.cwd, values.out);
    await writeFileAtomic(file, serializeSavedPlan({ plan, basis }));
    diag(io, 'info', `plan saved to ${file}; run: pgbk apply ${values.out}`);
  }
  if (values['detailed-exitcode'] === true) return plan.actions.length > 0 ? EXIT.changes : EXIT.ok;
  return EXIT.ok;
}
