/**
 * The long-running reconciler (`pgbk daemon`). Per configured server: a ServerRunner that runs
 * apply() for that server alone (so a long base backup of one server never delays WAL archiving of
 * another), woken by
 *   - chokidar on incoming/ (a segment arrived: archive it within about a second),
 *   - node-cron on the backup schedule (a backup may be due: plan() decides from the slots),
 *   - a periodic full reconcile that catches anything a watcher missed.
 * apply() takes the server's lock for the pass and releases it after, so a manual `pgbk apply`
 * waits for at most one pass (and the daemon waits for it likewise, then retries).
 */

import { watch, type FSWatcher } from 'chokidar';
import { schedule, type ScheduledTask } from 'node-cron';
import path from 'node:path';
import { apply } from '../apply/apply.js';
import { ensureServerDirs, incomingDir, readBackups } from '../catalog/index.js';
import type { Desired, ServerConfig } from '../config/resolved.js';
import { formatError, toPgbkError } from '../errors.js';
import { switchWal } from '../pg/probe.js';
import { slotNameFor } from '../pg/receivewal.js';
import type { Plan } from '../model/types.js';
import type { Logger } from '../lib/logger.js';
import { ReceiverSupervisor } from './receiver.js';
import { ServerRunner } from './server-runner.js';
import { ensureStreamingDir, handOverStreamed, streamingDir } from '../catalog/streaming.js';
import { localRootOf } from '../catalog/local-spool.js';
import { setLongInterval, setLongTimeout, type LongTimer } from '../lib/timer.js';
import { plural } from '../lib/plural.js';

export interface DaemonOptions {
  readonly logger: Logger;
  /** Reads and validates the configuration (SIGHUP calls it again). */
  readonly load: () => Promise<Desired>;
  readonly reconcileEveryMs: number;
  readonly lockTimeoutMs: number;
  readonly debounceMs?: number;
  readonly retryMs?: number;
  /** Called after every pass (e.g. to write the metrics file). Errors are logged, not fatal. */
  readonly afterPass?: (desired: Desired) => Promise<void>;
  /**
   * A backup WAITING_FOR_WAL this long gets a pg_switch_wal() on its server (an idle server may
   * otherwise take hours to fill the segment holding the backup's end). Default 60 s.
   */
  readonly switchWalAfterMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * 'finished': every pass ended by itself within the shutdown timeout; 'aborted': the passes still
 * running were then aborted (a base backup stops, is recorded FAILED and its multipart upload or
 * directory is removed; the locks are released) and ended within ABORT_GRACE_MS; 'abandoned': not
 * even that — the process exits with the pass cut short (the next start repairs it).
 */
export type StopOutcome = 'finished' | 'aborted' | 'abandoned';

/** After aborting the passes in progress: how long they get to record FAILED and clean up. */
const ABORT_GRACE_MS = 30_000;

export class Daemon {
  private desired: Desired | undefined;
  private readonly runners = new Map<string, ServerRunner>();
  private watchers: FSWatcher[] = [];
  private tasks: ScheduledTask[] = [];
  private interval: LongTimer | undefined;
  private readonly lastWarnings = new Map<string, string>();
  private readonly receivers = new Map<string, ReceiverSupervisor>();
  private readonly lastSwitch = new Map<string, number>();
  private stopping = false;
  /** Aborts the passes in progress when the shutdown timeout has passed (stop()). */
  private readonly abort = new AbortController();
  private reloading: Promise<void> = Promise.resolve();

  constructor(private readonly opts: DaemonOptions) {}

  private get log(): Logger {
    return this.opts.logger;
  }

  async start(): Promise<void> {
    this.desired = await this.opts.load();
    await this.configure(this.desired);
    // Chained, not setInterval: Node turns a period of 2^31 ms or more (--reconcile-interval 4w)
    // into 1 ms, a reconcile loop that never rests.
    this.interval = setLongInterval(() => this.wakeAll('periodic reconcile'), this.opts.reconcileEveryMs);
    this.log.log('info', 'daemon started', {
      servers: this.desired.servers.map((s) => s.name).join(','),
      config: this.desired.configPath,
      reconcileEverySeconds: Math.round(this.opts.reconcileEveryMs / 1000),
    });
    this.wakeAll('start');
  }

  /** SIGHUP: a configuration that does not load keeps the old one running. One reload at a time. */
  reload(): Promise<void> {
    this.reloading = this.reloading
      .then(() => this.reloadNow())
      .catch((err: unknown) => this.log.log('error', `configuration reload failed: ${formatError(toPgbkError(err))}`));
    return this.reloading;
  }

  private async reloadNow(): Promise<void> {
    if (this.stopping) return;
    let next: Desired;
    try {
      next = await this.opts.load();
    } catch (err) {
      this.log.log('error', `configuration reload failed, keeping the previous configuration: ${formatError(toPgbkError(err))}`);
      return;
    }
    if (this.stopping) return;
    await this.teardownWakeups();
    for (const [name, runner] of this.runners) {
      if (!next.servers.some((s) => s.name === name)) {
        void runner.stop();
        this.runners.delete(name);
      }
    }
    for (const [name, receiver] of this.receivers) {
      const s = next.servers.find((x) => x.name === name);
      if (s === undefined || s.wal.method !== 'stream' || this.receiverKey(next, s) !== receiver.key) {
        await receiver.stop();
        this.receivers.delete(name);
      }
    }
    this.desired = next;
    await this.configure(next);
    this.log.log('info', 'configuration reloaded', { servers: next.servers.map((s) => s.name).join(','), config: next.configPath });
    this.wakeAll('reload');
  }

  /**
   * Stop waking up, let passes in progress finish for up to `timeoutMs`. An abandoned pass is safe
   * to cut short (every write is atomic; the next start finds a dead lock holder and a STARTED
   * backup with a dead owner, and repairs both), just wasteful.
   */
  async stop(timeoutMs: number): Promise<StopOutcome> {
    this.stopping = true;
    this.interval?.clear();
    await this.reloading; // a reload in progress must not set up watchers after this
    await this.teardownWakeups();
    const busy = [...this.runners.entries()].filter(([, r]) => r.busy).map(([n]) => n);
    if (busy.length > 0)
      this.log.log('info', 'waiting for the pass in progress to finish', { servers: busy.join(','), timeoutSeconds: Math.round(timeoutMs / 1000) });
    const finished = Promise.all([...this.runners.values()].map((r) => r.stop()));
    let outcome: StopOutcome = (await within(finished, timeoutMs)) ? 'finished' : 'aborted';
    if (outcome === 'aborted') {
      // Waiting longer would only delay the stop: abort what runs, so a base backup ends FAILED
      // with its multipart upload aborted (object storage) and the S3 lease released, instead of
      // leaving both to the next start.
      this.log.log('warn', 'shutdown timeout passed: aborting the pass in progress');
      this.abort.abort(new Error('the daemon is stopping (shutdown timeout passed)'));
      if (!(await within(finished, ABORT_GRACE_MS))) outcome = 'abandoned';
    }
    // Receivers last: WAL keeps streaming while a pass (a backup) finishes.
    await Promise.all([...this.receivers.values()].map((r) => r.stop()));
    return outcome;
  }

  private wakeAll(why: string): void {
    if (this.stopping) return;
    for (const [name, runner] of this.runners) {
      if (why !== 'periodic reconcile') this.log.log('info', 'wake', { server: name, reason: why });
      runner.wake();
    }
  }

  private async configure(desired: Desired): Promise<void> {
    for (const server of desired.servers) {
      const runner = this.runnerFor(server.name);
      await ensureServerDirs(desired.catalog, server.name);
      // An object-storage catalog without a spool has no incoming/ (WAL arrives by wal-push).
      if (localRootOf(desired.catalog) !== undefined) this.watchers.push(this.watchDir(incomingDir(desired.catalog, server.name), server, runner));
      if (server.wal.method === 'stream') {
        this.watchers.push(this.watchDir(await ensureStreamingDir(desired.catalog, server.name), server, runner));
        if (!this.receivers.has(server.name) && server.connection !== undefined) {
          const receiver = new ReceiverSupervisor({
            server: server.name,
            conninfo: server.connection,
            directory: streamingDir(desired.catalog, server.name),
            slot: slotNameFor(server),
            logger: this.log,
            env: this.opts.env ?? process.env,
          });
          this.receivers.set(server.name, receiver);
          receiver.start();
        }
      }
      const expr = server.backup.schedule;
      if (expr !== undefined) {
        this.tasks.push(
          schedule(
            expr,
            () => {
              this.log.log('info', 'wake', { server: server.name, reason: `schedule "${expr}"` });
              runner.wake();
            },
            { timezone: server.backup.timezone, name: `pgbk-${server.name}` },
          ),
        );
      }
      // Restore drills (issue 14): wake when the drill schedule fires; plan() decides.
      const drill = server.drill;
      if (drill !== undefined) {
        this.tasks.push(
          schedule(
            drill.schedule,
            () => {
              this.log.log('info', 'wake', { server: server.name, reason: `drill schedule "${drill.schedule}"` });
              runner.wake();
            },
            { timezone: drill.timezone, name: `pgbk-${server.name}-drill` },
          ),
        );
      }
    }
  }

  private receiverKey(desired: Desired, server: ServerConfig): string {
    return `${server.connection ?? ''}\n${streamingDir(desired.catalog, server.name)}\n${slotNameFor(server)}`;
  }

  private watchDir(dir: string, server: ServerConfig, runner: ServerRunner): FSWatcher {
    const watcher = watch(dir, {
      ignoreInitial: true,
      depth: 0,
      // Temp names of an archive_command in flight (".NAME.tmp") and pg_receivewal's growing
      // NAME.partial: the rename that completes them wakes us.
      ignored: (p: string) => p !== dir && (path.basename(p).startsWith('.') || p.endsWith('.partial')),
    });
    watcher.on('add', () => runner.wake());
    watcher.on('change', () => runner.wake());
    watcher.on('error', (err) => this.log.log('warn', `watcher error on ${dir}: ${String(err)}`, { server: server.name }));
    return watcher;
  }

  private async teardownWakeups(): Promise<void> {
    const watchers = this.watchers;
    const tasks = this.tasks;
    this.watchers = [];
    this.tasks = [];
    for (const t of tasks) await t.destroy();
    await Promise.all(watchers.map((w) => w.close()));
  }

  private runnerFor(name: string): ServerRunner {
    let runner = this.runners.get(name);
    if (runner === undefined) {
      runner = new ServerRunner({
        debounceMs: this.opts.debounceMs ?? 100,
        retryMs: this.opts.retryMs ?? 10_000,
        pass: () => this.pass(name),
        onError: (err) => this.log.log('error', `pass failed: ${formatError(toPgbkError(err, { server: name }))}`, { server: name }),
      });
      this.runners.set(name, runner);
    }
    return runner;
  }

  /** One reconcile pass for one server: exactly what `pgbk apply --server NAME` does. */
  private async pass(name: string): Promise<void> {
    const desired = this.desired;
    const server = desired?.servers.find((s) => s.name === name);
    if (desired === undefined || server === undefined) return;
    let deferred = 0;
    if (server.wal.method === 'stream') {
      const h = await handOverStreamed(desired.catalog, name);
      deferred = h.deferred;
      if (h.moved > 0) this.log.log('info', `${plural(h.moved, 'streamed file')} handed to incoming/`, { server: name });
    }
    const report = await apply(desired, {
      now: new Date(),
      servers: [name],
      lockTimeoutMs: this.opts.lockTimeoutMs,
      signal: this.abort.signal,
      log: (line) => this.log.log('info', line, { server: name }),
      onPlan: (plan) => this.logPlan(name, plan),
    });
    for (const r of report.results) {
      this.log.log(r.outcome === 'failed' ? 'error' : 'info', `${r.action.kind} ${r.action.subject}: ${r.outcome}`, {
        server: name,
        ...(r.detail === '' ? {} : { detail: r.detail }),
      });
    }
    for (const e of report.serverErrors) this.log.log('error', formatError(e), { server: name });
    await this.nudgeIdleServer(desired, server);
    // A pushed copy of the same segment was in incoming/: it is archived now, so hand over the
    // streamed one in another pass (it will be recognised as a duplicate and dropped).
    if (deferred > 0) this.runners.get(name)?.wake();
    if (this.opts.afterPass !== undefined) {
      await this.opts.afterPass(desired).catch((err: unknown) => this.log.log('warn', `after-pass hook failed: ${formatError(toPgbkError(err))}`));
    }
  }

  /**
   * A backup waiting for its end segment on an idle server: close the segment (pg_switch_wal) once
   * it has waited switchWalAfterMs, at most that often, and come back to finish it.
   */
  private async nudgeIdleServer(desired: Desired, server: ServerConfig): Promise<void> {
    const after = this.opts.switchWalAfterMs ?? 60_000;
    const waiting = (await readBackups(desired.catalog, server.name)).filter((b) => b.status === 'WAITING_FOR_WAL');
    if (waiting.length === 0 || server.connection === undefined) return;
    const now = Date.now();
    const since = Math.min(...waiting.map((b) => Date.parse(b.endTime)));
    const last = this.lastSwitch.get(server.name) ?? 0;
    if (now - since >= after && now - last >= after) {
      this.lastSwitch.set(server.name, now);
      try {
        const lsn = await switchWal(server.connection);
        this.log.log('info', `backup waiting for WAL for ${Math.round((now - since) / 1000)}s: pg_switch_wal() at ${lsn}`, { server: server.name });
      } catch (err) {
        this.log.log('warn', `pg_switch_wal failed: ${formatError(toPgbkError(err))}`, { server: server.name });
      }
    }
    // Come back when the next nudge is due, whatever else happens (or not) meanwhile.
    const runner = this.runners.get(server.name);
    const dueIn = Math.max(1000, Math.min(after - (now - since), after - (now - (this.lastSwitch.get(server.name) ?? 0))));
    setLongTimeout(() => runner?.wake(), Math.max(1000, dueIn), { unref: true });
  }

  private logPlan(name: string, plan: Plan): void {
    for (const a of plan.actions) this.log.log('info', `plan ${a.kind} ${a.subject}`, { server: name, reason: a.reason });
    // Warnings repeat on every pass while the condition lasts: log them when they change.
    const text = plan.warnings.map((w) => `${w.code}: ${w.message}`).join('\n');
    if (text !== (this.lastWarnings.get(name) ?? '')) {
      for (const w of plan.warnings) this.log.log('warn', w.message, { server: name, code: w.code });
      this.lastWarnings.set(name, text);
    }
  }
}

/** Whether `p` settles within `ms` (a rejection counts as settled: the runners never reject). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: LongTimer | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setLongTimeout(() => resolve(false), ms);
  });
  const done = p.then(
    () => true as const,
    () => true as const,
  );
  const r = await Promise.race([done, timeout]);
  timer?.clear();
  return r;
}
