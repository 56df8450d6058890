import { writeFileAtomic } from '../catalog/index.js';
import { selectServers } from '../config/select-servers.js';
import { serializeSavedPlan } from '../apply/saved-plan.js';
import { observe, observedHash } from '../observe/index.js';
import { plan as makePlan } from '../plan/plan.js';
import { renderPlanJson, renderPlanText } from '../plan/render.js';
import path from 'node:path';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, parseTimeFlag } from './options.js';
import { PLAN_OPTIONS } from './commands.js';

/** `pgbk plan`: observe, plan, print. Never changes the catalog. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('plan', args, PLAN_OPTIONS);
  const desired = await loadDesired(values.config, io);
  const now = values.now === undefined ? new Date() : parseTimeFlag('--now', values.now);
  const servers = selectServers(desired, values.server);
  const observed = await observe(desired, servers.map((s) => s.name));
  const plan = makePlan({ ...desired, servers }, observed, now);
  io.stdout.write(values.json === true ? renderPlanJson(plan) : renderPlanText(plan, { color: io.isTTY }));
  if (values.out !== undefined) {
    const basis = {
      createdAt: new Date().toISOString(),
      configHash: desired.configHash,
      servers: Object.fromEntries(observed.servers.map((s) => [s.name, observedHash(s)])),
    };
    const file = path.resolve(io.cwd, values.out);
    await writeFileAtomic(file, serializeSavedPlan({ plan, basis }));
    io.stderr.write(`plan saved to ${file}; run: pgbk apply ${values.out}\n`);
  }
  if (values['detailed-exitcode'] === true) return plan.actions.length > 0 ? EXIT.changes : EXIT.ok;
  return EXIT.ok;
}
