/**
 * What a command needs from the outside world, passed in so commands can be driven from tests
 * without touching the real process: streams, environment, working directory, whether stdout is a
 * terminal (colours, progress).
 */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly isTTY: boolean;
  /** --log-format: diagnostic lines as text (default) or one JSON object per line. */
  readonly logFormat?: 'text' | 'json' | undefined;
  /** Prefix text diagnostic lines with an ISO UTC timestamp (apply, backup: run from cron). */
  readonly timestamps?: boolean;
  /** Set by dispatch for commands that use the catalog (src/cli/run-as-owner.ts). */
  readonly catalogUse?: CatalogUse;
}

/** Exit statuses, in one place (README "Exit codes"). */
export const EXIT = {
  ok: 0,
  failure: 1,
  /** `plan --detailed-exitcode`: the plan has changes. */
  changes: 2,
} as const;

export type CommandMain = (args: readonly string[], io: CliIo) => Promise<number>;

/** How a command uses the catalog, set by dispatch (src/cli/run-as-owner.ts decides the OS user). */
export interface CatalogUse {
  readonly command: string;
  readonly access: 'write' | 'read' | 'restore';
}
