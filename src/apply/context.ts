import type { ServerConfig } from '../config/resolved.js';
import type { Action, ServerIdentity } from '../model/types.js';
import type { ProgressFactory } from '../lib/progress.js';
import type { ServerFacts } from '../pg/probe.js';

/** What an executor gets: the server it acts on, where the catalog is, and a logger (stderr). */
export interface ExecContext {
  readonly catalog: string;
  readonly server: ServerConfig;
  /** The decision time of the plan (schedule slot math); executors use the real clock for ids. */
  readonly now: Date;
  readonly log: (line: string) => void;
  /** Known after ensureIdentity; undefined before first contact when it could not be learned. */
  identity: ServerIdentity | undefined;
  /** The live server's facts from this command's identity probe (BackupContext.facts). */
  readonly facts?: ServerFacts;
  /** Aborted on SIGINT/SIGTERM: long actions (pg_basebackup) stop and record FAILED. */
  readonly signal?: AbortSignal;
  /** Set when the command runs on a terminal: long copies (base backups) show their progress. */
  readonly progress?: ProgressFactory;
  /** The configuration file (restore drills write it into the copy's restore_command). */
  readonly configPath?: string;
}

export type Outcome = 'done' | 'skipped' | 'failed';

export interface ActionResult {
  readonly action: Action;
  readonly outcome: Outcome;
  /** What happened, for the apply report ("archived 14, 1 duplicate dropped", "already deleted"). */
  readonly detail: string;
}
