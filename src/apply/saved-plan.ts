import { PgbkError } from '../errors.js';
import { observedHash } from '../observe/index.js';
import { parsePlanJson, renderPlanJson } from '../plan/plan-json.js';
import type { Observed, Plan } from '../model/types.js';

/**
 * A plan saved by `pgbk plan -o FILE` for review, then run by `pgbk apply FILE`. Besides the plan it
 * records what the plan was computed from — the config's hash and a narrow hash of each server's
 * observed state — so apply can refuse a plan the world has moved past (Terraform's stale plan).
 */
export interface PlanBasis {
  readonly createdAt: string;
  readonly configHash: string;
  /** observedHash per server (the catalog's state, without the cluster identity). */
  readonly servers: Readonly<Record<string, string>>;
  /**
   * The system identifier per server whose catalog had one (server.json) when the plan was made.
   * A server without one here may get it recorded by apply's first contact: that is no change.
   */
  readonly identities?: Readonly<Record<string, string>>;
}

/** The basis of a plan computed now from `observed` under the config hashed as `configHash`. */
export function planBasis(configHash: string, observed: Observed): PlanBasis {
  const identities: Record<string, string> = {};
  for (const s of observed.servers) if (s.identity !== undefined) identities[s.name] = s.identity.systemIdentifier;
  return {
    createdAt: new Date().toISOString(),
    configHash,
    servers: Object.fromEntries(observed.servers.map((s) => [s.name, observedHash(s)])),
    identities,
  };
}

export interface SavedPlan {
  readonly plan: Plan;
  readonly basis: PlanBasis;
}

export function serializeSavedPlan(saved: SavedPlan): string {
  const json = JSON.parse(renderPlanJson(saved.plan)) as Record<string, unknown>;
  return `${JSON.stringify({ ...json, basis: saved.basis }, null, 2)}\n`;
}

export function parseSavedPlan(text: string, file: string): SavedPlan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PgbkError('USAGE', `${file}: not a pgbk plan (invalid JSON: ${(err as Error).message})`);
  }
  const basis = (raw as { basis?: PlanBasis }).basis;
  if (basis === undefined || typeof basis.configHash !== 'string' || typeof basis.createdAt !== 'string' || typeof basis.servers !== 'object') {
    throw new PgbkError('USAGE', `${file}: not a saved pgbk plan (no "basis"; write one with pgbk plan -o FILE)`);
  }
  return { plan: parsePlanJson(text), basis };
}

/** Why a saved plan may not be applied now, or undefined when it may. */
export function stalenessReason(saved: SavedPlan, current: PlanBasis, realNow: Date, maxAgeMs: number): string | undefined {
  if (saved.basis.configHash !== current.configHash) return 'the configuration file changed since the plan was made';
  const age = realNow.getTime() - new Date(saved.basis.createdAt).getTime();
  if (age > maxAgeMs) {
    return `the plan is ${Math.round(age / 1000)}s old (max ${Math.round(maxAgeMs / 1000)}s): what is due or expired depends on the clock`;
  }
  const names = new Set([...Object.keys(saved.basis.servers), ...Object.keys(current.servers)]);
  for (const name of [...names].sort()) {
    if (saved.basis.servers[name] !== current.servers[name]) return `the catalog of server ${name} changed since the plan was made`;
    // Only an identity the plan saw can have changed; none seen → recorded since by first contact.
    const seen = saved.basis.identities?.[name];
    const now = current.identities?.[name];
    if (seen !== undefined && seen !== now) {
      return `the catalog of server ${name} now belongs to cluster ${now ?? '(none recorded)'}, the plan was made for cluster ${seen}`;
    }
  }
  return undefined;
}
