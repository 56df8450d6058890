/**
 * Run every check that applies to one server, in a fixed order. Live checks need `connection`;
 * when the server cannot be reached only the connection check fails and the others that need it
 * are skipped (one clear failure instead of ten consequences).
 */

import type { S3RepositoryConfig, ServerConfig } from '../config/resolved.js';
import { readIdentity } from '../catalog/index.js';
import { observeServer } from '../observe/observe.js';
import { planServer } from '../plan/plan.js';
import {
  checkBackupAge,
  checkCatalogSpace,
  checkContinuity,
  checkIncomingIdentity,
  checkMinRedundancy,
  checkQuarantine,
  checkWalLag,
} from './catalog-checks.js';
import {
  checkArchiveCommand,
  checkArchiveMode,
  checkArchiver,
  checkConnection,
  checkIdentity,
  checkPrivileges,
  checkProgram,
  checkWalLevel,
  gatherLiveFacts,
  type LiveFacts,
} from './live-checks.js';
import { checkSsh } from './ssh-check.js';
import { checkArchiveTimeline } from './timeline-check.js';
import { checkArchiveTarget, checkWalArrival } from './wal-arrival.js';
import { checkStreaming } from './stream-checks.js';
import { checkObjectStore } from './object-store-checks.js';
import type { CheckResult, ServerCheckReport } from './types.js';
import { checkDrill, checkObjectives } from './drill-checks.js';
import { isRefusingArchiveCommand } from '../pg/archive-settings.js';

export interface CheckOptions {
  readonly catalog: string;
  readonly now: Date;
  readonly env: NodeJS.ProcessEnv;
  /** The configuration file in use: an archive_command's --config is compared with it. */
  readonly configPath?: string;
  /** How long the WAL arrival check waits for the switched segment (default 60 s). */
  readonly walTimeoutMs?: number;
  /** The object store, when the catalog is one (s3://…). */
  readonly s3?: S3RepositoryConfig;
}

export const DEFAULT_WAL_TIMEOUT_MS = 60_000;

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export async function checkServer(server: ServerConfig, opts: CheckOptions): Promise<ServerCheckReport> {
  const checks: CheckResult[] = [];
  const push = (c: CheckResult | undefined): void => {
    if (c !== undefined) checks.push(c);
  };
  // An object store first: when it cannot be reached, that is the one failure to report, not a
  // crash of every check that reads the catalog.
  if (opts.s3 !== undefined) {
    const store = await checkObjectStore(opts.catalog, server.name, opts.s3);
    checks.push(...store.checks);
    if (store.repo === undefined) return { server: server.name, checks };
  }
  const known = await readIdentity(opts.catalog, server.name);

  let live: LiveFacts | Error | undefined;
  if (server.connection !== undefined) {
    live = await gatherLiveFacts(server.connection).catch(toError);
    push(checkConnection(live));
    if (!(live instanceof Error)) {
      push(checkPrivileges(live));
      push(checkWalLevel(live));
      const identity = checkIdentity(live, known);
      push(identity);
      if (server.wal.method === 'push') {
        const mode = checkArchiveMode(live);
        push(mode);
        let command = checkArchiveCommand(live, server);
        if (command.ok)
          command = (await checkArchiveTarget(live.facts.archiveCommand, server, opts.catalog, opts.configPath ?? '', live.dataDirectory)) ?? command;
        push(command);
        let archiver = checkArchiver(live);
        // A command that refuses by design (restore's 'false') is the cause: say so, not the
        // generic causes of a failing command (permissions, disk space).
        if (!archiver.ok && isRefusingArchiveCommand(live.facts.archiveCommand)) {
          archiver = { ...archiver, hint: 'archive_command refuses every segment (see archive_command above): fix that, and the archiver catches up' };
        }
        push(archiver);
        // End to end only when nothing above already explains why WAL cannot arrive (one clear
        // failure, not a timeout on top), and on a primary: a standby cannot pg_switch_wal().
        if (identity.ok && mode.ok && command.ok && archiver.ok && !live.facts.inRecovery && (live.role.rolsuper || live.role.can_switch)) {
          push(
            await checkWalArrival(server, server.connection, {
              catalog: opts.catalog,
              timeoutMs: opts.walTimeoutMs ?? DEFAULT_WAL_TIMEOUT_MS,
              superuser: live.role.rolsuper,
              segSize: live.facts.walSegmentSize,
            }),
          );
        }
      }
      if (server.wal.method === 'stream') checks.push(...(await checkStreaming(server, server.connection)));
    }
    const version = live instanceof Error ? (known?.pgVersion ?? 0) : live.facts.pgVersion;
    push(checkProgram('pg_basebackup', version, opts.env));
    if (server.wal.method === 'stream') push(checkProgram('pg_receivewal', version, opts.env));
  }
  push(await checkSsh(server));

  const observed = await observeServer(opts.catalog, server);
  const expectedSysid = live !== undefined && !(live instanceof Error) ? live.facts.systemIdentifier : known?.systemIdentifier;
  push(await checkIncomingIdentity(opts.catalog, observed, expectedSysid));
  if (opts.s3 === undefined) push(await checkCatalogSpace(opts.catalog, observed));
  push(checkWalLag(server, observed, opts.now));
  push(checkBackupAge(server, observed, opts.now));
  push(checkMinRedundancy(server, observed));
  const planned = planServer(server, observed, opts.now);
  push(checkContinuity(observed, planned.warnings));
  // A standby's own timeline may trail its primary's archived one for a moment: primaries only.
  if (live !== undefined && !(live instanceof Error) && !live.facts.inRecovery) push(checkArchiveTimeline(server.name, live.facts.timeline, observed.wal));
  push(checkDrill(server, observed, opts.now));
  push(checkObjectives(server, planned.warnings));
  push(await checkQuarantine(opts.catalog, server.name));
  return { server: server.name, checks };
}
