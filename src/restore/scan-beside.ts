/**
 * The restore's scan of the WAL to replay for CREATE TABLESPACE (new-tablespaces.ts), run beside
 * other work: it only reads the catalog, so it can overlap the checks or the unpack, and its
 * verdict is taken where the restore needs it. Its log lines are held until then, so that a
 * refusal by something else (a non-empty target) is not preceded by a report of the scan.
 *
 * new-tablespaces.ts (and the WAL reader and zstd decoder it brings) is imported when the scan
 * starts: a restore that starts it beside the unpack does not load it before the first write.
 */

import type { Choice } from './choose-backup.js';
import type { RecoveryTarget } from './target.js';

export interface ScanJob {
  readonly catalog: string;
  readonly server: string;
  readonly target: RecoveryTarget;
  readonly allowNewTablespaces?: boolean;
}

export class TablespaceScanRun {
  readonly #lines: string[] = [];
  readonly #result: Promise<string[]>;

  /** Starts the scan now. */
  constructor(job: ScanJob, choice: Choice) {
    const log = (line: string): void => {
      this.#lines.push(line);
    };
    this.#result = import('./new-tablespaces.js').then((m) =>
      m.refuseNewTablespaces(
        {
          catalog: job.catalog,
          server: job.server,
          target: job.target,
          ...(job.allowNewTablespaces === undefined ? {} : { allowNewTablespaces: job.allowNewTablespaces }),
          log,
        },
        choice,
      ),
    );
    this.#result.catch(() => undefined);
  }

  /** The scan's warnings once it has ended, its lines logged first; rejects with its refusal. */
  async verdict(log: (line: string) => void): Promise<string[]> {
    try {
      return await this.#result;
    } finally {
      for (const line of this.#lines.splice(0)) log(line);
    }
  }

  /** `fn` is called (once) if and when the scan refuses, with its error. */
  onRefusal(fn: (err: unknown) => void): void {
    this.#result.catch(fn);
  }
}
