/**
 * Every command's definition in one place: name, one-line summary, positional arguments, options
 * (type, default and a sentence of help) (where its handler lives is in command-loaders.ts). The parser (options.ts), the
 * help screens, "did you mean" and shell completion (help.ts) all read these same objects, so a
 * flag cannot exist in one and be missing from another.
 *
 * Pure data: `pgbk wal-push` and `pgbk wal-fetch` (run by PostgreSQL once per WAL segment) load
 * this module, and each handler is imported only when its command runs. Its only imports are the
 * SSH push/fetch flags, which live with the option sets they are parsed into (wal-push/target.ts,
 * wal-fetch/source.ts: light modules the per-segment clients load anyway).
 */

import { FETCH_FLAGS } from '../wal-fetch/source.js';
import { PUSH_FLAGS } from '../wal-push/target.js';

export interface OptionDef {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  /** The value's placeholder in help (FILE, DURATION, …). */
  readonly value?: string;
  readonly help: string;
}

export type OptionDefs = Readonly<Record<string, OptionDef>>;

/**
 * How errors become exit statuses (report-error.ts): `standard` is 0 ok / 1 failure (2 for
 * `plan --detailed-exitcode`); `restore-command` is PostgreSQL's restore_command contract
 * (1 = the file is not in the archive, 255 = fatal, stop recovery).
 */
export type ExitPolicy = 'standard' | 'restore-command';

export interface CommandDef {
  readonly name: string;
  readonly summary: string;
  /** Positional arguments as shown in usage, e.g. "SERVER [ID|latest]". */
  readonly args: string;
  /** More sentences for `pgbk CMD --help`. */
  readonly description?: string;
  readonly options: OptionDefs;
  /** Has a --json output (else --json is refused as a usage error). */
  readonly json: boolean;
  /** Diagnostic lines carry an ISO UTC timestamp in text log format (cron-run commands). */
  readonly timestamps?: boolean;
  readonly exitPolicy?: ExitPolicy;
  /** Internal (started by pgbk itself over SSH or as a worker): not listed in the main usage. */
  readonly hidden?: boolean;
  /** What completion offers for positionals: configured server names, or nothing. */
  readonly completeServers?: boolean;
}

export const GLOBAL_OPTIONS = {
  config: { type: 'string', short: 'c', value: 'FILE', help: 'configuration file (default: $PGBK_CONFIG, then pgbk.yaml found from the current directory)' },
  json: { type: 'boolean', default: false, help: 'print the result as one JSON object (see README "JSON output")' },
  debug: { type: 'boolean', default: false, help: 'print stack traces and routine diagnostics' },
  'log-format': { type: 'string', value: 'text|json', help: 'diagnostic lines on stderr as text or as one JSON object per line (time, level, msg)' },
  help: { type: 'boolean', short: 'h', default: false, help: 'show this help' },
} as const satisfies OptionDefs;

const LOCK_TIMEOUT_60 = {
  type: 'string',
  default: '60s',
  value: 'DURATION',
  help: 'how long to wait for the server lock held by another pgbk',
} as const satisfies OptionDef;

export const PLAN_OPTIONS = {
  server: { type: 'string', multiple: true, value: 'NAME', help: 'plan only this server (repeatable)' },
  now: { type: 'string', value: 'TIME', help: 'plan as if it were this ISO-8601 time (with a zone), to preview schedules and retention' },
  'detailed-exitcode': { type: 'boolean', default: false, help: 'exit 2 when the plan has changes, 0 when it has none' },
  out: { type: 'string', short: 'o', value: 'FILE', help: 'also save the plan for review; pgbk apply FILE then runs exactly it' },
} as const satisfies OptionDefs;

export const APPLY_OPTIONS = {
  server: { type: 'string', multiple: true, value: 'NAME', help: 'apply only to this server (repeatable)' },
  now: { type: 'string', value: 'TIME', help: 'act as if it were this ISO-8601 time (with a zone); not with a saved plan' },
  'lock-timeout': LOCK_TIMEOUT_60,
  'plan-max-age': { type: 'string', default: '1h', value: 'DURATION', help: 'refuse a saved plan older than this' },
  quiet: {
    type: 'boolean',
    short: 'q',
    default: false,
    help: 'print nothing when everything succeeded (for cron); errors and warnings that WAL or backups are at risk still go to stderr',
  },
} as const satisfies OptionDefs;

export const CHECK_OPTIONS = {
  'wal-timeout': {
    type: 'string',
    default: '60s',
    value: 'DURATION',
    help: 'how long the wal arrival check waits for the switched segment to reach this catalog',
  },
} as const satisfies OptionDefs;

export const BACKUP_OPTIONS = { 'lock-timeout': LOCK_TIMEOUT_60 } as const satisfies OptionDefs;

export const KEEP_OPTIONS = {
  target: {
    type: 'string',
    default: 'full',
    value: 'full|standalone',
    help: 'full keeps all WAL after the backup too; standalone only the WAL it needs to be consistent',
  },
  release: { type: 'boolean', default: false, help: 'unpin the backup: retention applies to it again' },
  'lock-timeout': LOCK_TIMEOUT_60,
} as const satisfies OptionDefs;

export const WAL_PUSH_OPTIONS = {
  ...PUSH_FLAGS,
  worker: {
    type: 'boolean',
    help: "without --to: archive into this host's catalog through the long-lived local worker (the fallback --print-archive-command writes)",
  },
  'print-archive-command': {
    type: 'boolean',
    help: 'print the recommended archive_command (a shell fast path in front of the worker) instead of pushing; recommended for busy servers',
  },
  pgdata: { type: 'string', value: 'DIR', help: 'with --print-archive-command: the data directory (default: the current directory)' },
  'wait-seconds': { type: 'string', value: 'N', help: 'with --print-archive-command: how long the fast path waits for the worker (0-600, default 5)' },
} as const satisfies OptionDefs;

export const WAL_FETCH_LOCAL_OPTIONS = {
  spool: { type: 'string', value: 'DIR', help: 'prefetch spool directory (default: .pgbk-spool in the data directory)' },
  prefetch: FETCH_FLAGS.prefetch,
  'clean-spool': { type: 'boolean', default: false, help: 'recovery_end_command: stop the prefetch worker and remove the spool' },
} as const satisfies OptionDefs;

export const RESTORE_OPTIONS = {
  'target-dir': { type: 'string', value: 'DIR', help: 'data directory to restore into (required; must be empty or missing)' },
  'target-time': { type: 'string', value: 'TIME', help: 'recover up to this time (ISO-8601 with a zone)' },
  'target-lsn': { type: 'string', value: 'LSN', help: 'recover up to this WAL position (e.g. 0/3000060)' },
  'target-xid': { type: 'string', value: 'XID', help: 'recover up to this transaction id' },
  'target-name': { type: 'string', value: 'NAME', help: 'recover up to this named restore point (pg_create_restore_point)' },
  'target-immediate': { type: 'boolean', default: false, help: 'stop as soon as the backup is consistent' },
  'target-action': { type: 'string', value: 'pause|promote|shutdown', help: 'what PostgreSQL does at the target (default pause; needs a target)' },
  'target-timeline': { type: 'string', value: 'latest|current|N', help: 'timeline to follow (default latest)' },
  'tablespace-dir': {
    type: 'string',
    value: 'DIR',
    help: 'put tablespaces under DIR/<oid> instead of their original locations (with --remote: DIR or OID=DIR, repeatable)',
  },
  'lock-timeout': { type: 'string', value: 'DURATION', help: 'how long to wait for the server lock (default 60s)' },
  force: { type: 'boolean', default: false, help: 'empty a non-empty target directory first' },
  'verify-checksums': { type: 'boolean', default: false, help: 'also verify data page checksums of the restored files' },
  'no-archive': { type: 'boolean', default: false, help: 'write archive_mode = off: an inspection copy that never archives, even once promoted' },
  'keep-archiving': {
    type: 'boolean',
    default: false,
    help: "keep the backup's archive settings, for a copy that replaces the server (default: archive_command = 'false', so a promoted copy archives nothing until you turn it back on)",
  },
  'allow-new-tablespaces': {
    type: 'boolean',
    default: false,
    help: "restore even when the WAL to replay creates a tablespace (its replay uses the source's directory: only safe on another host)",
  },
} as const satisfies OptionDefs;

/** Flags only `restore --remote` uses; src/restore-remote/remote-args.ts takes them out first. */
export const RESTORE_REMOTE_OPTIONS = {
  remote: { type: 'string', value: 'USER@HOST[:PORT]', help: 'restore onto the database host over SSH' },
  identity: { type: 'string', value: 'FILE', help: 'with --remote: SSH private key file' },
  'known-hosts': { type: 'string', value: 'FILE', help: "with --remote: known_hosts file the database host's key is checked against" },
  'wal-from': {
    type: 'string',
    value: 'ssh://USER@HOST[:PORT]/CATALOG',
    help: 'with --remote: the restored server fetches WAL on demand from this catalog over SSH',
  },
  'wal-identity': { type: 'string', value: 'FILE', help: 'with --wal-from: SSH key on the database host (absolute path)' },
  'wal-known-hosts': { type: 'string', value: 'FILE', help: 'with --wal-from: known_hosts on the database host (absolute path)' },
  'wal-remote-pgbk': { type: 'string', value: 'CMD', help: 'with --wal-from: how the database host runs pgbk on the backup host' },
  'db-pgbk': { type: 'string', value: 'CMD', help: 'with --remote: how to run pgbk on the database host' },
} as const satisfies OptionDefs;

export const VERIFY_OPTIONS = {
  quick: { type: 'boolean', default: false, help: 'check sizes and checksums of stored files only; skip pg_verifybackup' },
  'temp-dir': { type: 'string', value: 'DIR', help: 'where backups are unpacked for pg_verifybackup (default: $TMPDIR)' },
} as const satisfies OptionDefs;

export const DAEMON_OPTIONS = {
  'reconcile-interval': { type: 'string', default: '5m', value: 'DURATION', help: 'full plan-and-apply pass at least this often' },
  'lock-timeout': { type: 'string', default: '30s', value: 'DURATION', help: 'how long a pass waits for a server lock' },
  'shutdown-timeout': { type: 'string', default: '60s', value: 'DURATION', help: 'on SIGTERM, how long to let the pass in progress finish' },
  'metrics-file': { type: 'string', value: 'FILE', help: 'write Prometheus metrics to FILE after every pass' },
  'switch-wal-after': { type: 'string', default: '60s', value: 'DURATION', help: 'force a WAL switch when a base backup waits this long for its last segment' },
} as const satisfies OptionDefs;

export const METRICS_OPTIONS = {
  output: { type: 'string', short: 'o', value: 'FILE', help: 'write to FILE atomically (node_exporter textfile collector) instead of stdout' },
  checks: { type: 'boolean', default: false, help: 'also run the health checks and export their results' },
} as const satisfies OptionDefs;

const WORKER_OPTIONS = {
  pgdata: { type: 'string', value: 'DIR', help: 'the data directory the worker serves (required)' },
  'idle-exit': { type: 'string', value: 'SECONDS', help: 'exit after this long without requests' },
} as const satisfies OptionDefs;

export const WAL_PUSH_WORKER_OPTIONS = { ...PUSH_FLAGS, ...WORKER_OPTIONS } as const satisfies OptionDefs;
export const WAL_FETCH_WORKER_OPTIONS = { ...FETCH_FLAGS, ...WORKER_OPTIONS } as const satisfies OptionDefs;
export const WAL_RECEIVE_OPTIONS = {
  catalog: { type: 'string', value: 'DIR', help: 'the catalog to archive into (absolute path)' },
  compression: PUSH_FLAGS.compression,
} as const satisfies OptionDefs;
export const WAL_SERVE_OPTIONS = {
  catalog: { type: 'string', value: 'DIR', help: 'the catalog to serve WAL from (absolute path)' },
} as const satisfies OptionDefs;

export const COMPLETION_OPTIONS = {} as const satisfies OptionDefs;

const NONE = {} as const satisfies OptionDefs;

export const COMMANDS: readonly CommandDef[] = [
  {
    name: 'init',
    summary: 'write a starter pgbk.yaml in the current directory',
    args: '[FILE]',
    description: 'Never overwrites an existing file.',
    options: NONE,
    json: false,
  },
  { name: 'validate', summary: 'check the configuration file', args: '', options: NONE, json: true },
  {
    name: 'plan',
    summary: 'show what apply would change, and why',
    args: '',
    description: 'Observes the catalog and the servers, never changes anything.',
    options: PLAN_OPTIONS,
    json: true,
  },
  {
    name: 'apply',
    summary: 'converge the catalog: archive WAL, take due backups, enforce retention',
    args: '[PLANFILE]',
    description:
      'Without PLANFILE: observe, plan and execute. With a plan saved by plan -o: execute exactly that plan, refused if the catalog or configuration changed since. Exit 1 if any action failed.',
    options: APPLY_OPTIONS,
    json: true,
    timestamps: true,
  },
  { name: 'backup', summary: 'take a base backup now', args: 'SERVER', options: BACKUP_OPTIONS, json: true, timestamps: true, completeServers: true },
  { name: 'list', summary: 'list backups, oldest first', args: '[SERVER...]', options: NONE, json: true, completeServers: true },
  { name: 'show', summary: 'one backup in detail', args: 'SERVER ID|latest', options: NONE, json: true, completeServers: true },
  { name: 'status', summary: 'per-server summary: backups, WAL, lag, locks', args: '[SERVER...]', options: NONE, json: true, completeServers: true },
  {
    name: 'keep',
    summary: 'pin a backup so retention never deletes it (--release to unpin)',
    args: 'SERVER ID|latest',
    options: KEEP_OPTIONS,
    json: true,
    completeServers: true,
  },
  {
    name: 'wal-push',
    summary: "archive one WAL file (archive_command = 'pgbk wal-push SERVER %p')",
    args: 'SERVER PATH',
    description:
      'Exit 0 only once the file is durable in the archive; any other status makes PostgreSQL retry. With --to, the file goes to a catalog on another host through a long-lived SSH worker.',
    options: WAL_PUSH_OPTIONS,
    json: false,
    completeServers: true,
  },
  {
    name: 'wal-fetch',
    summary: 'fetch one WAL file (restore_command, written by pgbk restore)',
    args: 'SERVER NAME DEST',
    description:
      'Exit 0: DEST holds the verified file; 1: the file is not in the archive (PostgreSQL ends recovery or tries another timeline); 255: the archive cannot be read or the file is corrupt (PostgreSQL stops with a FATAL error instead of promoting early).',
    options: { ...WAL_FETCH_LOCAL_OPTIONS, ...FETCH_FLAGS },
    json: false,
    exitPolicy: 'restore-command',
    completeServers: true,
  },
  {
    name: 'restore',
    summary: 'restore a backup, optionally to a point in time',
    args: 'SERVER [ID|latest]',
    description:
      'Give at most one --target-*; without one PostgreSQL replays all archived WAL. With --remote the restore goes onto the database host over SSH.',
    options: { ...RESTORE_OPTIONS, ...RESTORE_REMOTE_OPTIONS },
    json: true,
    completeServers: true,
  },
  {
    name: 'check',
    summary: 'health checks, OK/FAILED with a hint; exit 1 if any fails',
    args: '[SERVER...]',
    options: CHECK_OPTIONS,
    json: true,
    completeServers: true,
  },
  {
    name: 'verify',
    summary: 're-read stored backups and WAL against their checksums',
    args: 'SERVER [ID|latest|all]',
    description: 'all (the default) also reads back every file of the WAL archive. Exit 1 on any problem.',
    options: VERIFY_OPTIONS,
    json: true,
    completeServers: true,
  },
  {
    name: 'daemon',
    summary: 'long-running reconciler: archive WAL as it arrives, backups on schedule',
    args: '',
    description: 'Runs until SIGTERM/SIGINT; SIGHUP reloads the configuration.',
    options: DAEMON_OPTIONS,
    json: false,
  },
  { name: 'metrics', summary: 'Prometheus metrics (node_exporter textfile format)', args: '', options: METRICS_OPTIONS, json: true },
  {
    name: 'completion',
    summary: 'print a shell completion script (bash)',
    args: 'bash',
    description: 'Install with: pgbk completion bash > /etc/bash_completion.d/pgbk',
    options: COMPLETION_OPTIONS,
    json: false,
  },
  { name: 'help', summary: 'show the help of a command', args: '[COMMAND]', options: NONE, json: false },
  // Started by pgbk itself (workers, and the far end of SSH sessions): not in the main usage.
  { name: 'wal-push-worker', summary: 'long-lived worker behind wal-push --to', args: 'SERVER', options: WAL_PUSH_WORKER_OPTIONS, json: false, hidden: true },
  {
    name: 'wal-receive',
    summary: 'receiving end of wal-push --to on the backup host (over SSH)',
    args: 'SERVER',
    options: WAL_RECEIVE_OPTIONS,
    json: false,
    hidden: true,
  },
  {
    name: 'wal-fetch-worker',
    summary: 'long-lived prefetching worker behind wal-fetch --from',
    args: 'SERVER',
    options: WAL_FETCH_WORKER_OPTIONS,
    json: false,
    hidden: true,
  },
  {
    name: 'wal-serve',
    summary: 'serving end of wal-fetch --from on the backup host (over SSH)',
    args: 'SERVER',
    options: WAL_SERVE_OPTIONS,
    json: false,
    hidden: true,
  },
  {
    name: 'backup-agent',
    summary: 'file reader on the database host for SSH backups (speaks a protocol on stdin/stdout)',
    args: '',
    options: NONE,
    json: false,
    hidden: true,
  },
];

export function findCommand(name: string): CommandDef | undefined {
  return COMMANDS.find((c) => c.name === name);
}
