/**
 * Run the real pgbk CLI (compiled dist/src/cli.js) as a child process, and set up the usual test
 * world: a temp catalog, a config file, and a PostgreSQL cluster whose archive_command pushes WAL
 * into the catalog's incoming/ (the classic Barman setup).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listArchivedWal } from '../../src/catalog/wal-archive.js';
import { chownToPostgres, runAsPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type ClusterOptions, type TestCluster } from './postgres.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');
const IS_ROOT = process.getuid?.() === 0;

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly pid: number;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run as the postgres OS user (as PostgreSQL's archive_command would). */
  readonly asPostgres?: boolean;
  /** Run as this OS user (runuser; the test must be root). Wins over asPostgres. */
  readonly runAs?: string;
  /** Called with the child's PID as soon as it is spawned (to kill it mid-action). */
  readonly onSpawn?: (pid: number) => void;
}

export function runPgbk(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const user = opts.runAs ?? (opts.asPostgres === true ? 'postgres' : undefined);
  if (opts.runAs !== undefined && !IS_ROOT) throw new Error(`runAs ${opts.runAs} needs a root test process`);
  const [cmd, argv] = user !== undefined && IS_ROOT ? ['runuser', ['-u', user, '--', process.execPath, CLI, ...args]] : [process.execPath, [CLI, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      cwd: opts.cwd ?? REPO_ROOT,
      // uvu sets FORCE_COLOR=1 for its own output; pgbk honours FORCE_COLOR, and cron or a pipe
      // has no such variable: run pgbk as it runs there (a test may still pass FORCE_COLOR).
      env: { ...process.env, FORCE_COLOR: undefined, ...(opts.env ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, pid: child.pid ?? -1 }));
  });
}

export interface World {
  readonly root: string;
  /** How the cluster archives: cp into incoming/ (catalog owned by us) or `pgbk wal-push` (catalog owned by postgres). */
  readonly archive: 'incoming' | 'wal-push';
  readonly catalog: string;
  readonly configPath: string;
  readonly cluster: TestCluster;
  readonly incoming: string;
  /** Run pgbk with this world's config; in a wal-push world as the postgres OS user by default. */
  pgbk(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Rewrite the server's YAML block (everything under servers.main besides connection). */
  writeConfig(serverYaml: string, defaultsYaml?: string): Promise<void>;
  destroy(): Promise<void>;
}

export interface WorldOptions {
  readonly serverYaml?: string;
  readonly cluster?: ClusterOptions;
  /**
   * 'incoming' (default): archive_command copies into incoming/ atomically; the catalog belongs to
   * the test process. 'wal-push': archive_command is `pgbk wal-push main %p`, and the whole catalog
   * belongs to postgres (wal-push runs as the database's OS user), so world.pgbk runs as postgres too.
   */
  readonly archive?: 'incoming' | 'wal-push';
}

/** Single-quote for /bin/sh (PostgreSQL runs archive_command through the shell). */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A cluster archiving into <catalog>/main/incoming/ with an atomic copy (write a dot-name, then
 * rename — what rsync does), or through `pgbk wal-push`, and a config for server "main".
 */
export async function makeWorld(opts: WorldOptions = {}): Promise<World> {
  const archive = opts.archive ?? 'incoming';
  const root = await tempDir('pgbk-world-');
  const catalog = path.join(root, 'catalog');
  const incoming = path.join(catalog, 'main', 'incoming');
  const configPath = path.join(root, 'pgbk.yaml');
  let archiveCommand: string;
  if (archive === 'incoming') {
    // The catalog belongs to the test (root); PostgreSQL's archive_command (user postgres) only needs
    // to traverse it and write into incoming/.
    await mkdir(path.join(catalog, 'main'), { recursive: true, mode: 0o711 });
    await mkdir(incoming, { mode: 0o770 });
    await chownToPostgres(incoming);
    archiveCommand = `test ! -f ${incoming}/%f && cp %p ${incoming}/.%f.tmp && mv ${incoming}/.%f.tmp ${incoming}/%f`;
  } else {
    await mkdir(incoming, { recursive: true, mode: 0o770 });
    await chownToPostgres(catalog);
    archiveCommand = [process.execPath, CLI, '--config', configPath, 'wal-push', 'main'].map(shQuote).join(' ') + ' %p';
  }
  const cluster = await startCluster({ archiveCommand, ...(opts.cluster ?? {}) });
  const world: World = {
    root,
    archive,
    catalog,
    configPath,
    cluster,
    incoming,
    pgbk: (args, runOpts = {}) => runPgbk(['--config', configPath, ...args], { asPostgres: archive === 'wal-push', ...runOpts }),
    async writeConfig(serverYaml, defaultsYaml = '') {
      const indented = serverYaml
        .trim()
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n');
      await writeFile(configPath, `catalog: ${catalog}\n${defaultsYaml}servers:\n  main:\n    connection: "${cluster.conninfo}"\n${indented}\n`);
    },
    async destroy() {
      await cluster.destroy();
      await rm(root, { recursive: true, force: true });
    },
  };
  await world.writeConfig(opts.serverYaml ?? 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 2 }');
  return world;
}

// ---------------------------------------------------------------------------------------------
// Reading the catalog from tests.

/** One entry of `pgbk list --json` (the fields tests look at). */
export interface ListEntry {
  readonly id: string;
  readonly status: string;
  readonly beginTime: string;
  readonly endTime: string | null;
  readonly beginWal: string | null;
  readonly endWal: string | null;
  readonly keep: string;
}

/** `pgbk list --json`, failing loudly when the command fails. */
export async function listBackups(w: World): Promise<ListEntry[]> {
  const r = await w.pgbk(['list', '--json']);
  if (r.code !== 0) throw new Error(`pgbk list failed (${String(r.code)}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { backups: ListEntry[] }).backups;
}

/** Archived segment names (24 hex, compression suffix stripped), sorted, read straight from disk. */
export async function archivedSegments(catalog: string, server = 'main'): Promise<string[]> {
  const wal = path.join(catalog, server, 'wal');
  const out: string[] = [];
  let dirs: string[];
  try {
    dirs = await readdir(wal);
  } catch {
    return [];
  }
  for (const d of dirs.sort()) {
    if (!/^[0-9A-F]{16}$/.test(d)) continue;
    for (const f of await readdir(path.join(wal, d))) {
      const m = /^([0-9A-F]{24})(\.zst|\.gz)?$/.exec(f);
      if (m?.[1] !== undefined) out.push(m[1]);
    }
  }
  return out.sort();
}

/** The stored file of an archived segment (whatever its compression), or undefined. */
export async function archivedSegmentFile(catalog: string, segment: string, server = 'main'): Promise<string | undefined> {
  const dir = path.join(catalog, server, 'wal', segment.slice(0, 16));
  for (const ext of ['.zst', '.gz', '']) {
    const file = path.join(dir, segment + ext);
    try {
      await stat(file);
      return file;
    } catch {
      // try the next compression
    }
  }
  return undefined;
}

export async function sha256OfFile(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/**
 * Every file and directory under `dir` with its size and mtime (and a content hash for files), as
 * sorted lines: equal snapshots mean nothing was created, removed, rewritten or touched.
 */
export async function snapshotTree(dir: string): Promise<string[]> {
  const lines: string[] = [];
  async function walk(d: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = await stat(p);
      const rel = path.relative(dir, p);
      if (e.isDirectory()) {
        lines.push(`${rel}/ ${st.mtimeMs}`);
        await walk(p);
      } else {
        lines.push(`${rel} ${st.size} ${st.mtimeMs} ${await sha256OfFile(p)}`);
      }
    }
  }
  await walk(dir);
  return lines.sort();
}

/**
 * Write a little WAL, close the segment with pg_switch_wal() and wait until PostgreSQL reports it
 * archived (archive_command succeeded). Returns the closed segment's name.
 */
export async function switchWal(w: World, table = 'pgbk_fill'): Promise<string> {
  await w.cluster.sql(`CREATE TABLE IF NOT EXISTS ${table} (id serial primary key, note text)`);
  await w.cluster.sql(`INSERT INTO ${table} (note) SELECT 'row ' || g FROM generate_series(1, 100) g`);
  const seg = await w.cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const last = await w.cluster.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
    if (last >= seg) return seg;
    if (Date.now() > deadline) throw new Error(`segment ${seg} not archived after 30 s (last ${last})\n${w.cluster.logTail(20)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Wait until PostgreSQL has no WAL file left waiting for archive_command (no .ready status file). */
export async function waitArchiverIdle(c: TestCluster, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await c.sql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
    if (ready === '0') return;
    if (Date.now() > deadline) throw new Error(`${ready} WAL file(s) still waiting for archive_command\n${c.logTail(20)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------------------------
// Restores PostgreSQL proves, standbys, the catalog's WAL.

/**
 * `pgbk restore SERVER …ARGS --target-dir DIR` through `run` (a world's pgbk: as the catalog's owner)
 * into a fresh directory postgres may create it in, then PostgreSQL on it until it is out of
 * recovery, and `query`'s result. `onRestored` sees the restore's output first. Everything started
 * and written is stopped and removed afterwards.
 */
export async function restoreAndQuery(
  run: (args: readonly string[]) => Promise<RunResult>,
  server: string,
  args: readonly string[],
  query: string,
  onRestored?: (r: RunResult) => void,
): Promise<string> {
  const parent = await tempDir('pgbk-restore-query-');
  await chownToPostgres(parent);
  const dir = path.join(parent, 'data');
  try {
    const r = await run(['restore', server, '--target-dir', dir, ...args]);
    if (r.code !== 0) throw new Error(`pgbk restore ${server} ${args.join(' ')}: exit ${String(r.code)}\n${r.stderr}`);
    onRestored?.(r);
    const c = await startClusterOn(dir, { conf: { archive_mode: 'off' } });
    try {
      await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 120_000);
      return await c.sql(query);
    } finally {
      await c.destroy();
    }
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

export interface PrimaryWithStandby {
  readonly world: World;
  readonly standby: { readonly cluster: TestCluster; readonly root: string };
  destroy(): Promise<void>;
}

/**
 * A world whose primary archives through `pgbk wal-push` and holds table t (step 0), and a streaming
 * standby of it that has replayed that row (the standby and failover scenarios start here).
 */
export async function primaryWithStandby(): Promise<PrimaryWithStandby> {
  const world = await makeWorld({ archive: 'wal-push' });
  try {
    await world.cluster.sql('CREATE TABLE t (step int PRIMARY KEY)');
    await world.cluster.sql('INSERT INTO t VALUES (0)');
    const standby = await startStandby(world.cluster);
    return {
      world,
      standby,
      async destroy() {
        await standby.cluster.destroy();
        await world.destroy();
        await rm(standby.root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await world.destroy();
    throw err;
  }
}

/** A streaming standby of `primary` (pg_basebackup -R: standby.signal, primary_conninfo), in recovery. */
export async function startStandby(primary: TestCluster): Promise<{ readonly cluster: TestCluster; readonly root: string }> {
  const root = await tempDir('pgbk-standby-');
  await chownToPostgres(root);
  const pgdata = path.join(root, 'data');
  await runAsPostgres('pg_basebackup', ['-d', primary.conninfo, '-D', pgdata, '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync']);
  const cluster = await startClusterOn(pgdata);
  await waitForQuery(cluster, 'SELECT pg_is_in_recovery()', 't');
  return { cluster, root };
}

/** Wait until segment `name` is in the catalog's archive (not just reported archived by PostgreSQL). */
export async function waitInCatalog(w: Pick<World, 'catalog' | 'cluster'>, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await listArchivedWal(w.catalog, 'main')).segments.includes(name)) return;
    if (Date.now() > deadline) throw new Error(`${name} not in the catalog within ${timeoutMs} ms\n${w.cluster.logTail(20)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
