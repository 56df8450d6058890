/**
 * Run the real pgbk CLI (compiled dist/src/cli.js) as a child process, and set up the usual test
 * world: a temp catalog, a config file, and a PostgreSQL cluster whose archive_command pushes WAL
 * into the catalog's incoming/ (the classic Barman setup).
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chownToPostgres, startCluster, tempDir, type ClusterOptions, type TestCluster } from './postgres.js';

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
  /** Called with the child's PID as soon as it is spawned (to kill it mid-action). */
  readonly onSpawn?: (pid: number) => void;
}

export function runPgbk(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, argv] =
    opts.asPostgres === true && IS_ROOT
      ? ['runuser', ['-u', 'postgres', '--', process.execPath, CLI, ...args]]
      : [process.execPath, [CLI, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...(opts.env ?? {}) },
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
  readonly catalog: string;
  readonly configPath: string;
  readonly cluster: TestCluster;
  readonly incoming: string;
  pgbk(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Rewrite the server's YAML block (everything under servers.main besides connection). */
  writeConfig(serverYaml: string, defaultsYaml?: string): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A cluster archiving into <catalog>/main/incoming/ with an atomic copy (write a dot-name, then
 * rename — what rsync does), and a config for server "main".
 */
export async function makeWorld(opts: { serverYaml?: string; cluster?: ClusterOptions } = {}): Promise<World> {
  const root = await tempDir('pgbk-world-');
  const catalog = path.join(root, 'catalog');
  const incoming = path.join(catalog, 'main', 'incoming');
  // The catalog belongs to the test (root); PostgreSQL's archive_command (user postgres) only needs
  // to traverse it and write into incoming/.
  await mkdir(path.join(catalog, 'main'), { recursive: true, mode: 0o711 });
  await mkdir(incoming, { mode: 0o770 });
  await chownToPostgres(incoming);
  const archiveCommand = `test ! -f ${incoming}/%f && cp %p ${incoming}/.%f.tmp && mv ${incoming}/.%f.tmp ${incoming}/%f`;
  const cluster = await startCluster({ archiveCommand, ...(opts.cluster ?? {}) });
  const configPath = path.join(root, 'pgbk.yaml');
  const world: World = {
    root,
    catalog,
    configPath,
    cluster,
    incoming,
    pgbk: (args, runOpts = {}) => runPgbk(['--config', configPath, ...args], runOpts),
    async writeConfig(serverYaml, defaultsYaml = '') {
      const indented = serverYaml
        .trim()
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n');
      await writeFile(
        configPath,
        `catalog: ${catalog}\n${defaultsYaml}servers:\n  main:\n    connection: "${cluster.conninfo}"\n${indented}\n`,
      );
    },
    async destroy() {
      await cluster.destroy();
      const { rm } = await import('node:fs/promises');
      await rm(root, { recursive: true, force: true });
    },
  };
  await world.writeConfig(opts.serverYaml ?? 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 2 }');
  return world;
}
