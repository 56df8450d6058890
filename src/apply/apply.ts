import { acquireLock, ensureServerDirs, handOverStreamed, readIdentity, recordIdentity, type LockHandle } from '../catalog/index.js';
import { readDrills } from '../catalog/drills.js';
import type { Desired, ServerConfig } from '../config/resolved.js';
import { selectServers } from '../config/select-servers.js';
import { PgbkError, toPgbkError } from '../errors.js';
import { observe } from '../observe/index.js';
import { plan as makePlan } from '../plan/plan.js';
import type { Action, Observed, Plan, ServerContact, ServerIdentity } from '../model/types.js';
import type { ServerFacts } from '../pg/probe.js';
import type { ProgressFactory } from '../lib/progress.js';
import type { ActionResult, ExecContext } from './context.js';
import { executeServerActions } from './execute.js';
import { learnServer } from './identity.js';
import { otherClusters, sameClusterConflicts, type ClusterOf } from './same-cluster.js';
import { failOrphanedBackups, reapLeftovers, reapRecordlessBackups } from './repair.js';
import { planBasis, stalenessReason, type SavedPlan } from './saved-plan.js';
import { mark } from '../lib/profile.js';
import { archiverNeverArchives } from '../pg/archive-settings.js';

export interface ApplyOptions {
  /** Decision time (schedules, retention): the real clock unless `--now` says otherwise. */
  readonly now: Date;
  readonly servers?: readonly string[];
  readonly lockTimeoutMs: number;
  readonly log: (line: string) => void;
  /** Aborts long actions (SIGINT/SIGTERM): they stop and record FAILED; the locks are released. */
  readonly signal?: AbortSignal;
  /** Progress of long copies (base backups), on a terminal. */
  readonly progress?: ProgressFactory;
  /** `apply PLANFILE`: execute exactly this plan if it is not stale. */
  readonly saved?: SavedPlan;
  readonly savedMaxAgeMs?: number;
  /**
   * Called with each plan about to be executed, before it changes anything: round 1, and round 2
   * when a backup became DONE (follow-up retention and pruning).
   */
  readonly onPlan?: (plan: Plan, round: number) => void;
}

export interface ApplyReport {
  readonly plan: Plan;
  readonly results: readonly ActionResult[];
  /** Servers that could not be prepared (identity, lock): their actions did not run. */
  readonly serverErrors: readonly PgbkError[];
}

/** Lock every selected server, in name order (so two applies can never deadlock). */
async function lockAll(desired: Desired, servers: readonly ServerConfig[], timeoutMs: number): Promise<LockHandle[]> {
  const held: LockHandle[] = [];
  try {
    for (const s of servers) {
      await ensureServerDirs(desired.catalog, s.name);
      held.push(await acquireLock(desired.catalog, s.name, { command: 'pgbk apply', timeoutMs }));
    }
  } catch (err) {
    await Promise.all(held.map((h) => h.release()));
    throw err;
  }
  return held;
}

/** A restore drill of the plan, run once the locks are released (src/drill/run-drill.ts). */
interface DeferredDrill {
  readonly ctx: ExecContext;
  readonly action: Action;
}

/**
 * observe → plan → (report) → execute, under the per-server locks. The plan handed to onPlan is the
 * one executed. Per-server preparation errors (a server that is down and has never been seen, a
 * wrong cluster) stop that server only; they are returned and make the apply fail.
 *
 * Restore drills run after the locks are released: a drill may take as long as its time limit, and
 * WAL archiving (another apply, the daemon) must not wait for it. The backup it reads is protected
 * from retention by restore's in-use mark, which is taken under the lock; its RUNNING record keeps
 * a concurrent apply from starting the same drill.
 */
export async function apply(desired: Desired, opts: ApplyOptions): Promise<ApplyReport> {
  const deferred: DeferredDrill[] = [];
  const report = await applyLocked(desired, opts, deferred);
  if (deferred.length === 0) return report;
  const results = [...report.results];
  for (const d of deferred) results.push(...(await executeServerActions(d.ctx, [d.action])));
  return { ...report, results };
}

async function applyLocked(desired: Desired, opts: ApplyOptions, deferred: DeferredDrill[]): Promise<ApplyReport> {
  const servers = selectServers(desired, opts.servers);
  const locks = await lockAll(desired, servers, opts.lockTimeoutMs);
  mark('locks');
  try {
    const contexts = new Map<string, ExecContext>();
    const serverErrors: PgbkError[] = [];
    // Learn every identity first, write nothing yet: two servers of one cluster are refused
    // (both of them, naming each other) before either gets a server.json, a backup or a segment.
    const learned = new Map<string, ServerIdentity | undefined>();
    let firstContact = false;
    // What identityFor learnt about reachability: the plan warns about it like `pgbk plan` does.
    const contacts = new Map<string, ServerContact>();
    // The live servers' answers, handed to the base backups this apply takes (no second probe).
    const facts = new Map<string, ServerFacts>();
    for (const server of servers) {
      try {
        if ((await readIdentity(desired.catalog, server.name)) === undefined) firstContact = true;
        learned.set(server.name, await identityFor(desired, server, opts, contacts, facts));
      } catch (err) {
        serverErrors.push(namingServer(err, server.name));
      }
    }
    const candidates: ClusterOf[] = [...learned].flatMap(([name, id]) => (id === undefined ? [] : [{ server: name, systemIdentifier: id.systemIdentifier }]));
    const conflicts = sameClusterConflicts(candidates, await otherClusters(desired, new Set(servers.map((s) => s.name)), firstContact));
    for (const server of servers) {
      if (!learned.has(server.name)) continue;
      const conflict = conflicts.get(server.name);
      if (conflict !== undefined) {
        serverErrors.push(conflict);
        continue;
      }
      const serverFacts = facts.get(server.name);
      const ctx: ExecContext = {
        catalog: desired.catalog,
        server,
        now: opts.now,
        log: opts.log,
        identity: undefined,
        configPath: desired.configPath,
        ...(serverFacts === undefined ? {} : { facts: serverFacts }),
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        ...(opts.progress === undefined ? {} : { progress: opts.progress }),
      };
      try {
        const id = learned.get(server.name);
        ctx.identity = id === undefined ? undefined : await recordIdentity(desired.catalog, server.name, id);
        await failOrphanedBackups(ctx);
        await reapLeftovers(ctx);
        // A drill whose pgbk was killed: its copy stopped, its scratch directory removed. The drill
        // code (restore, and ssh2 for remote drill hosts) is loaded only when a drill is RUNNING:
        // every apply would otherwise pay for it at start-up.
        if ((await readDrills(desired.catalog, server.name)).some((d) => d.status === 'RUNNING')) {
          await (await import('../drill/index.js')).reapInterruptedDrills(ctx);
        }
        await reapRecordlessBackups(ctx);
        // WAL method stream: segments pg_receivewal completed join the ordinary archive path.
        if (server.wal.method === 'stream') await handOverStreamed(desired.catalog, server.name);
        contexts.set(server.name, ctx);
      } catch (err) {
        serverErrors.push(namingServer(err, server.name));
      }
    }
    const ready = servers.filter((s) => contexts.has(s.name));
    mark('identity, repairs');
    const results: ActionResult[] = [];
    let plan: Plan;
    if (opts.saved !== undefined) {
      const current = planBasis(
        desired.configHash,
        await observe(
          desired,
          ready.map((s) => s.name),
        ),
      );
      const stale = stalenessReason(opts.saved, current, new Date(), opts.savedMaxAgeMs ?? 3600_000);
      if (stale !== undefined) {
        throw new PgbkError('STALE_PLAN', `refusing to apply a stale plan: ${stale}`, { hint: 'run pgbk plan -o FILE again and review it' });
      }
      plan = opts.saved.plan;
      opts.onPlan?.(plan, 1);
      results.push(...(await executePlan(plan, ready, contexts, deferred)));
      // A reviewed plan is executed exactly; no follow-up round that nobody reviewed.
      return { plan, results, serverErrors };
    }
    const withContacts = (o: Observed): Observed => ({
      servers: o.servers.map((s) => {
        const contact = contacts.get(s.name);
        return contact === undefined ? s : { ...s, contact };
      }),
    });
    // Observed afresh for each round: the first round's backups and deletions change the catalog.
    const planNow = async (): Promise<Plan> =>
      makePlan(
        { ...desired, servers: ready },
        withContacts(
          await observe(
            desired,
            ready.map((s) => s.name),
          ),
        ),
        opts.now,
      );
    plan = await planNow();
    mark('observe, plan');
    opts.onPlan?.(plan, 1);
    results.push(...(await executePlan(plan, ready, contexts, deferred)));
    mark('execute round 1');
    // A backup that became DONE changes what retention and WAL pruning decide (the WAL before the
    // first backup becomes prunable, an older backup becomes obsolete). Converge now, with a
    // follow-up plan that is printed before it runs like the first — so the next plan is empty.
    // It never takes another backup: a failed one is retried by the next apply, not in a loop.
    if (results.some((r) => r.outcome === 'done' && (r.action.kind === 'base-backup' || r.action.kind === 'finish-backup'))) {
      const followUp = await planNow();
      const drilling = new Set(deferred.map((d) => d.action.server));
      const actions = followUp.actions.filter((a) => a.kind !== 'base-backup' && !(a.kind === 'restore-drill' && drilling.has(a.server)));
      if (actions.length > 0) {
        const second: Plan = { ...followUp, actions };
        opts.onPlan?.(second, 2);
        results.push(...(await executePlan(second, ready, contexts, deferred)));
        plan = { ...plan, actions: [...plan.actions, ...actions] };
      }
    }
    mark('follow-up round');
    return { plan, results, serverErrors };
  } finally {
    await Promise.all(locks.map((l) => l.release()));
  }
}

async function executePlan(
  plan: Plan,
  servers: readonly ServerConfig[],
  contexts: ReadonlyMap<string, ExecContext>,
  deferred: DeferredDrill[],
): Promise<ActionResult[]> {
  const results: ActionResult[] = [];
  for (const server of servers) {
    const ctx = contexts.get(server.name)!;
    for (const action of plan.actions) if (action.server === server.name && action.kind === 'restore-drill') deferred.push({ ctx, action });
    const actions = plan.actions.filter((a) => a.server === server.name && a.kind !== 'restore-drill');
    if (actions.length > 0) results.push(...(await executeServerActions(ctx, actions)));
  }
  return results;
}

/**
 * The server's identity for this run. A server that cannot be reached right now must not stop WAL
 * archiving: fall back to the identity recorded at first contact (backups will fail on their own).
 */
async function identityFor(
  desired: Desired,
  server: ServerConfig,
  opts: ApplyOptions,
  contacts: Map<string, ServerContact>,
  facts: Map<string, ServerFacts>,
): Promise<ServerIdentity | undefined> {
  try {
    const learned = await learnServer(desired.catalog, server, new Date());
    if (learned.facts !== undefined) {
      facts.set(server.name, learned.facts);
      // The plan warns about these, as `pgbk plan` does; the base backup refuses on its own.
      const why = archiverNeverArchives(learned.facts);
      contacts.set(server.name, { reachable: true, timeline: learned.facts.timeline, ...(why === undefined ? {} : { archiverNeverArchives: why }) });
    }
    return learned.identity;
  } catch (err) {
    const e = toPgbkError(err, { server: server.name });
    if (e.code !== 'NETWORK' && e.code !== 'PG') throw e;
    const known = await readIdentity(desired.catalog, server.name);
    if (known === undefined) throw e;
    contacts.set(server.name, { reachable: false, error: e.message });
    opts.log(`${server.name}: server not reachable (${e.message}); using the identity recorded at first contact`);
    return known;
  }
}

/** The error, naming the server even when it was raised without it (e.g. by the pg driver layer). */
function namingServer(err: unknown, server: string): PgbkError {
  const e = toPgbkError(err, { server });
  return e.server !== undefined ? e : new PgbkError(e.code, e.message, { server, cause: e, path: e.path, hint: e.hint });
}
