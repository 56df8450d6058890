/** The summary's last line: how to start PostgreSQL on the restored directory, and what it then does. */

import { PgbkError } from '../errors.js';
import { shellQuote } from '../lib/shell-quote.js';
import type { RecoveryTarget, TargetAction } from './target.js';

export function nextStep(dir: string, target: RecoveryTarget, action: TargetAction): string {
  // The copy is either a look beside a source that still runs, or the lost server's replacement.
  const start = `start PostgreSQL on ${dir} — with the start command above (a free port) beside a running source, or with its own settings (pg_ctl -D ${shellQuote(dir)} start) if it replaces a lost server; it replays archived WAL through pgbk wal-fetch`;
  if (target.kind === 'latest') return `${start} to the end of the archive, then promotes (opens read-write on a new timeline)`;
  switch (action) {
    case 'pause':
      return `${start} to the target and pauses read-only: check the data, then SELECT pg_wal_replay_resume() to promote (or stop it, change the target, start again)`;
    case 'promote':
      return `${start} to the target and promotes (opens read-write on a new timeline)`;
    case 'shutdown':
      return `${start} to the target and shuts down; remove recovery.signal before starting it again as a primary`;
    default: {
      const never: never = action;
      throw new PgbkError('INTERNAL', `unknown action ${String(never)}`);
    }
  }
}
