/**
 * Command dispatch. Each command lives in its own module and is imported on demand, so
 * `pgbk wal-push` / `pgbk wal-fetch` (run by PostgreSQL once per WAL segment) do not pay for
 * loading the planner, ajv or ssh2.
 */
import type { CliIo, CommandMain } from './io.js';
import { withCatalogUse } from './run-as-owner.js';

const COMMANDS: Readonly<Record<string, () => Promise<{ main: CommandMain }>>> = {
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
  'wal-push-worker': () => import('../wal-push-remote/worker.js'),
  'wal-receive': () => import('../wal-push-remote/receive.js'),
  'wal-fetch-worker': () => import('../wal-fetch-remote/worker.js'),
  'wal-serve': () => import('../wal-fetch-remote/serve.js'),
  'backup-agent': () => import('../backup-ssh/backup-agent.js'),
  restore: () => import('./restore.js'),
  check: () => import('./check.js'),
  verify: () => import('./verify.js'),
  daemon: () => import('./daemon.js'),
  metrics: () => import('./metrics.js'),
};

const USAGE = `usage: pgbk [--config FILE] <command> [options]

commands:
  init                 write a starter pgbk.yaml in the current directory
  validate             check the configuration file
  plan                 show what apply would change, and why
  apply [PLANFILE]     converge the catalog: archive WAL, take due backups, enforce retention
  backup SERVER        take a base backup now
  list [SERVER]        list backups
  show SERVER ID|latest  one backup in detail
  status               per-server summary: backups, WAL, lag, locks
  keep SERVER ID       pin a backup (--release to unpin)
  wal-push SERVER PATH archive one WAL file (archive_command = 'pgbk wal-push SERVER %p')
  wal-push --to ssh://USER@HOST[:PORT]/CATALOG SERVER PATH   archive to a catalog on another host
                       over SSH through a long-lived worker (--identity, --known-hosts, --remote-pgbk)
  wal-fetch SERVER NAME DEST  fetch one WAL file (restore_command)
  wal-fetch --from ssh://USER@HOST[:PORT]/CATALOG SERVER NAME DEST   fetch from a catalog on another
                       host over SSH through a long-lived prefetching worker
  restore SERVER [ID|latest] --target-dir DIR   restore a backup, optionally to a point in time
                       (refused when the WAL to replay creates a tablespace: its replay would use the
                       source's directory; --allow-new-tablespaces accepts that on another host)
  check [SERVER...]    health checks, OK/FAILED with a hint; exit 1 if any fails
  verify SERVER [ID|all]  re-read stored backups and WAL against their checksums
  daemon               long-running reconciler: archive WAL as it arrives, backups on schedule
  metrics [--output FILE]  Prometheus metrics (node_exporter textfile format)

global options: --config/-c FILE (or PGBK_CONFIG), --json, --debug
`;

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  // Global options may come before the command: pgbk -c FILE plan. Move them behind it so every
  // command parses them the same way.
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config') {
      globals.push(a, argv[i + 1] ?? '');
      i += 2;
    } else if (a.startsWith('--config=') || a === '--debug' || a === '--json') {
      globals.push(a);
      i += 1;
    } else break;
  }
  const command = argv[i];
  const rest = [...argv.slice(i + 1), ...globals];
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === '--version' || command === 'version') {
    io.stdout.write('pgbk 0.1.0\n');
    return 0;
  }
  if (command === 'wal-push' && rest.some((a) => a === '--to' || a.startsWith('--to='))) {
    // Push to a catalog on another host over SSH: the tiny client of src/wal-push-remote.
    return (await import('../wal-push-remote/client.js')).main(rest, io);
  }
  const load = COMMANDS[command];
  if (load === undefined) {
    io.stderr.write(`pgbk: unknown command "${command}"\n\n${USAGE}`);
    return 1;
  }
  const mod = await load();
  return mod.main(rest, withCatalogUse(command, io));
}

