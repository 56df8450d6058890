/**
 * Where each command's handler lives, imported only when that command runs (so the per-segment
 * wal-push / wal-fetch load nothing else). Kept apart from the definitions in commands.ts, which the
 * handlers themselves import: definitions are data, this table is the only arrow from the
 * dispatcher down to the handlers, and nothing imports it but dispatch.ts.
 */
import type { CommandMain } from './io.js';

export const COMMAND_LOADERS: Readonly<Record<string, () => Promise<{ main: CommandMain }>>> = {
  init: () => import('./init.js'),
  validate: () => import('./validate.js'),
  plan: () => import('./plan.js'),
  apply: () => import('./apply.js'),
  backup: () => import('./backup.js'),
  list: () => import('./list.js'),
  show: () => import('./show.js'),
  status: () => import('./status.js'),
  keep: () => import('./keep.js'),
  'wal-push': () => import('./wal-push.js'),
  'wal-fetch': () => import('./wal-fetch.js'),
  restore: () => import('./restore.js'),
  check: () => import('./check.js'),
  verify: () => import('./verify.js'),
  daemon: () => import('./daemon.js'),
  metrics: () => import('./metrics.js'),
  completion: () => import('./completion.js'),
  help: () => import('./help.js'),
  'wal-push-worker': () => import('./wal-push-worker.js'),
  'wal-receive': () => import('./wal-receive.js'),
  'wal-fetch-worker': () => import('./wal-fetch-worker.js'),
  'wal-serve': () => import('./wal-serve.js'),
  'backup-agent': () => import('./backup-agent.js'),
};
