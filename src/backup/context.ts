import type { ServerConfig } from '../config/resolved.js';
import type { ProgressFactory } from '../lib/progress.js';
import type { ServerIdentity } from '../model/types.js';
import type { ServerFacts } from '../pg/probe.js';

/** What a backup method needs from the executor (apply's ExecContext satisfies it). */
export interface BackupContext {
  readonly catalog: string;
  readonly server: ServerConfig;
  readonly log: (line: string) => void;
  /** Known after first contact; the ssh method records it when it learns it. */
  identity: ServerIdentity | undefined;
  /**
   * What the live server said when this command learnt its identity, moments before (apply,
   * `pgbk backup`): the basebackup method uses it instead of probing again. Identity, version and
   * segment size cannot change without a new cluster, and pg_basebackup connects afresh anyway.
   */
  readonly facts?: ServerFacts;
  readonly signal?: AbortSignal;
  /** Set when the command runs on a terminal: long copies show their progress. */
  readonly progress?: ProgressFactory;
}

/** What the executor asks a method to do at points only the method knows. */
export interface TakeHooks {
  /**
   * Runs once the server reports the backup's end segment archived, while the method still
   * finishes its copy (the basebackup method: beside its checksum pass): the executor archives what
   * the server put in incoming/ there, so that the two overlap instead of following each other.
   * Its error comes out of take() after the backup's record is written; it never fails the backup.
   */
  readonly endSegmentArchived?: () => Promise<void>;
}
