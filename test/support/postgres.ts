/**
 * Real PostgreSQL 15 clusters for integration tests: initdb into a temp dir, start on a free
 * 127.0.0.1 port with the socket in that dir, small and fast settings (fsync off). We run as root
 * in CI and PostgreSQL refuses root, so server programs run as the `postgres` OS user through
 * runuser. Every postmaster started here is remembered by PID; if the test process exits or is
 * interrupted with a cluster still up, it is shut down by that PID (never by name).
 */

import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';

export const PG_BINDIR = process.env['PGBK_TEST_PG_BINDIR'] ?? '/usr/lib/postgresql/15/bin';
const IS_ROOT = process.getuid?.() === 0;

export interface ClusterOptions {
  /** Turns on archive_mode with this archive_command (%p, %f as PostgreSQL expands them). */
  readonly archiveCommand?: string;
  /** Extra postgresql.conf settings (values are quoted for you), e.g. { archive_timeout: '60' }. */
  readonly conf?: Readonly<Record<string, string>>;
  readonly initdbArgs?: readonly string[];
  /** Directory to hold data/, the socket and the log; a fresh temp dir when absent. */
  readonly dir?: string;
}

export interface StartOnOptions {
  /** Settings given on the postgres command line (they override postgresql.conf and .auto.conf). */
  readonly conf?: Readonly<Record<string, string>>;
  /** false: do not wait for connections (e.g. recovery_target_action = shutdown). Default true. */
  readonly wait?: boolean;
}

export interface TestCluster {
  readonly pgdata: string;
  readonly port: number;
  readonly socketDir: string;
  /** libpq conninfo over the unix socket as superuser postgres. */
  readonly conninfo: string;
  /** Postmaster PID. */
  readonly pid: number;
  /** Run SQL with psql (unaligned, tuples only); returns stdout without the final newline. */
  sql(query: string, dbname?: string): Promise<string>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stop and remove the cluster's temp directory. */
  destroy(): Promise<void>;
  /** The last lines of the server log, for assertion messages. */
  logTail(lines?: number): string;
}

// ---------------------------------------------------------------------------------------------
// Leftover cleanup: by PID only.

const livePids = new Set<number>();
/** Temp roots of clusters not yet destroyed: removed at exit unless PGBK_KEEP_TEST_DIRS=1. */
const liveRoots = new Set<string>();
let handlersInstalled = false;

/** Whether a process is still running (signal 0 probes without touching it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Synchronous (it runs in 'exit'): SIGQUIT is PostgreSQL's immediate shutdown, SIGKILL if it lingers. */
function killLeftovers(): void {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      livePids.delete(pid);
    }
  }
  const deadline = Date.now() + 3000;
  while ([...livePids].some(isAlive) && Date.now() < deadline) sleepSync(50);
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  livePids.clear();
  if (process.env['PGBK_KEEP_TEST_DIRS'] !== '1') {
    for (const root of liveRoots) {
      try {
        rmSync(root, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // best effort: a lingering backend may still be writing
      }
    }
  }
  liveRoots.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killLeftovers);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killLeftovers();
      process.kill(process.pid, signal); // our listener is gone: the default action ends the process
    });
  }
}

function track(pid: number): void {
  installHandlers();
  livePids.add(pid);
}

// ---------------------------------------------------------------------------------------------
// Processes and directories.

interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], cwd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: cwd ?? os.tmpdir(), maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`.trim()));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

/** Run a PostgreSQL server program as the postgres OS user (directly when we are not root). */
export function runAsPostgres(program: string, args: readonly string[], cwd?: string): Promise<RunResult> {
  const bin = path.join(PG_BINDIR, program);
  return IS_ROOT ? run('runuser', ['-u', 'postgres', '--', bin, ...args], cwd) : run(bin, args, cwd);
}

/** Free bytes a tmpfs must have to hold the test directories (clusters, catalogs, backups, restores). */
const TEST_TMPFS_MIN_FREE = 4 * 1024 ** 3;

/**
 * Where test directories go: PGBK_TEST_TMPDIR when set, else /dev/shm when it is a tmpfs we may
 * write and execute in with room to spare, else the OS temp dir. On tmpfs every fsync (PostgreSQL
 * with fsync off still syncs some; pgbk syncs each archived segment, each catalog write and every
 * restored file) costs nothing: alone, restore/pitr took 72 s instead of 79-86 s and ssh/backup
 * 48 s instead of 56 s; in full --jobs 2 runs the lanes barely changed (they are bound by CPU,
 * not by the disk). Only test data moves: pgbk's own temp and runtime directories stay in the OS
 * temp dir.
 */
function testTmpRoot(): string {
  const chosen = process.env['PGBK_TEST_TMPDIR'];
  if (chosen !== undefined && chosen !== '') return chosen;
  const shm = '/dev/shm';
  try {
    const mount = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[1] === shm);
    const options = mount?.[3]?.split(',') ?? [];
    if (mount?.[2] !== 'tmpfs' || !options.includes('rw') || options.includes('noexec')) return os.tmpdir();
    const st = statfsSync(shm);
    if (st.bavail * st.bsize < TEST_TMPFS_MIN_FREE) return os.tmpdir();
    accessSync(shm, constants.W_OK);
    return shm;
  } catch {
    return os.tmpdir();
  }
}
export const TEST_TMPDIR = testTmpRoot();

/** A fresh directory under TEST_TMPDIR that the postgres user can traverse (mode 0711). */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(TEST_TMPDIR, prefix));
  await chmod(dir, 0o711);
  removeAtExit(dir);
  return dir;
}

/**
 * Every directory tempDir made is removed when the test (or bench) process exits, whether or not
 * its test removed it: several tests left theirs (restoreByCopy's WAL copy, s3-wal's fake
 * programs, …), and on /dev/shm (TEST_TMPDIR) what is left is memory — repeated suite runs had
 * filled 23 GB of this 24 GB machine's RAM.
 */
const madeDirs = new Set<string>();
function removeAtExit(dir: string): void {
  if (madeDirs.size === 0) {
    process.once('exit', () => {
      for (const d of madeDirs) {
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          // still in use or already gone: nothing more to do at exit
        }
      }
    });
  }
  madeDirs.add(dir);
}

/** Give a file or a whole tree to the postgres user (no-op when not root: we run PG as ourselves). */
export async function chownToPostgres(target: string): Promise<void> {
  if (!IS_ROOT) return;
  await run('chown', ['-R', 'postgres:postgres', target]);
}

/** postgresql.conf string literal. */
function confValue(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** pg_ctl hands -o to /bin/sh, so values are single-quoted for the shell there. */
function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

async function readPostmasterPid(pgdata: string, timeoutMs: number): Promise<number> {
  const file = path.join(pgdata, 'postmaster.pid');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const pid = Number((await readFile(file, 'utf8')).split('\n')[0]);
      if (Number.isInteger(pid) && pid > 0) return pid;
    } catch {
      // not written yet
    }
    if (Date.now() > deadline) throw new Error(`no postmaster.pid in ${pgdata}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

function makeCluster(root: string, pgdata: string, port: number, pid: number, logFile: string): TestCluster {
  let stopped = false;
  liveRoots.add(root);
  const cluster: TestCluster = {
    pgdata,
    port,
    socketDir: root,
    conninfo: `host=${root} port=${port} user=postgres dbname=postgres`,
    pid,
    async sql(query: string, dbname = 'postgres'): Promise<string> {
      const args = ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', root, '-p', String(port), '-U', 'postgres', '-d', dbname, '-c', query];
      const r = await run(path.join(PG_BINDIR, 'psql'), args);
      return r.stdout.replace(/\n$/, '');
    },
    async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
      if (stopped) return;
      try {
        await runAsPostgres('pg_ctl', ['stop', '-D', pgdata, '-m', mode, '-w', '-t', '30'], root);
      } catch {
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      }
      if (!(await waitGone(pid, 10_000))) throw new Error(`postmaster ${pid} did not exit`);
      livePids.delete(pid);
      stopped = true;
    },
    async destroy(): Promise<void> {
      await cluster.stop('immediate');
      await rm(root, { recursive: true, force: true, maxRetries: 5 });
      liveRoots.delete(root);
    },
    logTail(lines = 40): string {
      return tail(logFile, lines);
    },
  };
  return cluster;
}

/** pg_ctl start; on a port someone grabbed meanwhile, the caller retries with another. */
async function pgCtlStart(root: string, pgdata: string, logFile: string, extra: readonly string[], wait: boolean): Promise<number> {
  try {
    await runAsPostgres('pg_ctl', ['start', '-D', pgdata, '-l', logFile, wait ? '-w' : '-W', '-t', '120', ...extra], root);
  } catch (err) {
    // pg_ctl may have failed after the postmaster came up (timeout): do not leave it running.
    const pid = await readPostmasterPid(pgdata, 0).catch(() => undefined);
    if (pid !== undefined && isAlive(pid)) {
      process.kill(pid, 'SIGQUIT');
      await waitGone(pid, 5000);
    }
    throw new Error(`${(err as Error).message}\n--- server log ---\n${tail(logFile, 30)}`);
  }
  const pid = await readPostmasterPid(pgdata, 10_000);
  track(pid);
  return pid;
}

// ---------------------------------------------------------------------------------------------
// initdb once per process and initdb arguments, then copy: initdb costs seconds on a loaded
// machine, a copy a fraction of one. Each copy gets its own system identifier (in pg_control and
// in the long header of the WAL segment initdb wrote) so clusters stay as distinct as initdb would
// make them: pgbk tells clusters apart by that identifier. If the template does not look exactly
// as expected (one WAL segment, a pg_control whose CRC we can find), we fall back to initdb.

const templates = new Map<string, Promise<string | undefined>>();

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of buf) c = (CRC32C_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Offset of pg_control's CRC (it covers every byte before it), or undefined if none matches. */
function controlCrcOffset(control: Buffer): number | undefined {
  for (let off = 16; off + 4 <= Math.min(control.length, 512); off += 4) {
    if (control.readUInt32LE(off) === crc32c(control.subarray(0, off))) return off;
  }
  return undefined;
}

/** The only WAL segment of a fresh initdb, or undefined if there is not exactly one. */
function onlyWalSegment(pgdata: string): string | undefined {
  const segs = readdirSync(path.join(pgdata, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n));
  return segs.length === 1 ? path.join(pgdata, 'pg_wal', segs[0]!) : undefined;
}

async function initdb(pgdata: string, args: readonly string[], cwd: string): Promise<void> {
  await runAsPostgres('initdb', ['-D', pgdata, '--auth=trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C', ...args], cwd);
}

/** initdb into a template directory (removed at exit), if a copy of it can be given a new identity. */
async function makeTemplate(args: readonly string[]): Promise<string | undefined> {
  const root = await tempDir('pgbk-pgtemplate-');
  liveRoots.add(root);
  await chownToPostgres(root);
  const pgdata = path.join(root, 'data');
  await initdb(pgdata, args, root);
  const control = await readFile(path.join(pgdata, 'global', 'pg_control'));
  const seg = onlyWalSegment(pgdata);
  if (controlCrcOffset(control) === undefined || seg === undefined) return undefined;
  const header = await readFile(seg);
  // The long page header's xlp_sysid (offset 24) is the one in pg_control (offset 0).
  if (!header.subarray(24, 32).equals(control.subarray(0, 8))) return undefined;
  return pgdata;
}

/** A system identifier as PostgreSQL makes one: seconds in the high half, the rest random. */
function newSystemIdentifier(): Buffer {
  const id = Buffer.alloc(8);
  id.writeUInt32LE(Math.floor(Math.random() * 0x100000000) >>> 0, 0);
  id.writeUInt32LE(Math.floor(Date.now() / 1000) >>> 0, 4);
  return id;
}

/** A fresh data directory at `pgdata`: a copy of this process's template with a new identity, or initdb. */
async function newDataDir(pgdata: string, args: readonly string[], cwd: string): Promise<void> {
  const key = JSON.stringify(args);
  let template = templates.get(key);
  if (template === undefined) {
    template = makeTemplate(args).catch(() => undefined);
    templates.set(key, template);
  }
  const source = await template;
  if (source === undefined) {
    await initdb(pgdata, args, cwd);
    return;
  }
  await run('cp', ['-a', source, pgdata]);
  const controlFile = path.join(pgdata, 'global', 'pg_control');
  const control = await readFile(controlFile);
  const crcAt = controlCrcOffset(control);
  const seg = onlyWalSegment(pgdata);
  if (crcAt === undefined || seg === undefined) throw new Error(`template copy ${pgdata} is not as the template was`);
  const id = newSystemIdentifier();
  id.copy(control, 0);
  control.writeUInt32LE(crc32c(control.subarray(0, crcAt)), crcAt);
  await writeFile(controlFile, control);
  const fd = await open(seg, 'r+');
  try {
    await fd.write(id, 0, 8, 24);
  } finally {
    await fd.close();
  }
}

/** initdb + start a new cluster. Call destroy() when done (leftovers are killed at exit anyway). */
export async function startCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const root = opts.dir ?? (await tempDir('pgbk-pg-'));
  await chownToPostgres(root);
  await chmod(root, 0o700);
  const pgdata = path.join(root, 'data');
  const logFile = path.join(root, 'postgres.log');
  await newDataDir(pgdata, opts.initdbArgs ?? [], root);
  await writeFile(
    path.join(pgdata, 'pg_hba.conf'),
    ['local all all trust', 'local replication all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust', ''].join('\n'),
  );
  const settings: Record<string, string> = {
    fsync: 'off',
    synchronous_commit: 'off',
    shared_buffers: '16MB',
    max_connections: '30',
    max_wal_senders: '4',
    wal_level: 'replica',
    listen_addresses: '127.0.0.1',
    unix_socket_directories: root,
    ...(opts.archiveCommand !== undefined ? { archive_mode: 'on', archive_command: opts.archiveCommand } : {}),
    ...(opts.conf ?? {}),
  };
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const lines = Object.entries({ ...settings, port: String(port) }).map(([k, v]) => `${k} = ${confValue(v)}`);
    await appendFile(path.join(pgdata, 'postgresql.conf'), `\n# pgbk test settings (attempt ${attempt})\n${lines.join('\n')}\n`);
    try {
      const pid = await pgCtlStart(root, pgdata, logFile, [], true);
      return makeCluster(root, pgdata, port, pid, logFile);
    } catch (err) {
      if (attempt >= 3 || !/could not bind|Address already in use/i.test((err as Error).message)) {
        if (opts.dir === undefined) await rm(root, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

/**
 * Start PostgreSQL on an existing data directory (a restored backup): chown it to postgres, mode
 * 0700, and override port, socket and listen address on the command line so whatever the restored
 * configuration says, the server comes up where the test expects it.
 */
export async function startClusterOn(pgdata: string, opts: StartOnOptions = {}): Promise<TestCluster> {
  if (!existsSync(pgdata)) throw new Error(`startClusterOn: ${pgdata} does not exist`);
  const root = await tempDir('pgbk-pgon-');
  await chownToPostgres(root);
  await chmod(root, 0o700);
  await chownToPostgres(pgdata);
  await chmod(pgdata, 0o700);
  const logFile = path.join(root, 'postgres.log');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const settings: Record<string, string> = {
      port: String(port),
      listen_addresses: '127.0.0.1',
      unix_socket_directories: root,
      ...(opts.conf ?? {}),
    };
    const o = Object.entries(settings)
      .map(([k, v]) => `-c ${shQuote(`${k}=${v}`)}`)
      .join(' ');
    try {
      const pid = await pgCtlStart(root, pgdata, logFile, ['-o', o], opts.wait ?? true);
      return makeCluster(root, pgdata, port, pid, logFile);
    } catch (err) {
      if (attempt >= 3 || !/could not bind|Address already in use/i.test((err as Error).message)) {
        await rm(root, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

/** Poll a query until it returns `expected` (e.g. "f" from pg_is_in_recovery()). */
export async function waitForQuery(cluster: TestCluster, query: string, expected: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      last = await cluster.sql(query);
      if (last === expected) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`waited ${timeoutMs} ms for ${JSON.stringify(query)} = ${expected}; last: ${last}\n${cluster.logTail(20)}`);
    }
    // Each try is a psql start (~10 ms of CPU): 100 ms between them halves the average overshoot
    // of the 200 ms this was, at little cost to the server being waited for.
    await new Promise((r) => setTimeout(r, 100));
  }
}
