import type { ServerConfig } from '../config/resolved.js';
import type { ProgressFactory } from '../lib/progress.js';
import type { ServerIdentity } from '../model/types.js';

/** What a backup method needs from the executor (apply's ExecContext satisfies it). */
export interface BackupContext {
  readonly catalog: string;
  readonly server: ServerConfig;
  readonly log: (line: string) => void;
  /** Known after first contact; the ssh method records it when it learns it. */
  identity: ServerIdentity | undefined;
  readonly signal?: AbortSignal;
  /** Set when the command runs on a terminal: long copies show their progress. */
  readonly progress?: ProgressFactory;
}
