/**
 * Test world for the `ssh` backup method: a private sshd, a PostgreSQL cluster whose
 * archive_command drops WAL into the catalog's incoming/, and a config reaching the cluster over
 * SSH as the postgres user (SSH-only by default; `withConnection` adds a libpq connection).
 */
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { copyTreeInto } from '../../../src/backup/ssh/restore-tree.js';
import { storedTreeAt } from '../../../src/backup/ssh/stored-tree.js';
import { CLI, runPgbk, type RunOptions, type RunResult } from '../../support/pgbk.js';
import { type ClusterOptions, chownToPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';

const pexec = promisify(execFile);

export interface SshWorld {
  readonly root: string;
  readonly catalog: string;
  readonly configPath: string;
  readonly cluster: TestCluster;
  readonly sshd: TestSshd;
  pgbk(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /**
   * agent: servers.main.ssh.pgbk (default: this checkout's compiled CLI, run by this node).
   * psqlConnection: null leaves ssh.psqlConnection out (psql finds the server by postmaster.pid).
   * backupCompression: backup.compression of the server (default none, from defaults; WAL stays none).
   */
  writeConfig(opts?: {
    withConnection?: boolean;
    psqlConnection?: string | null;
    extra?: string;
    agent?: string;
    backupCompression?: 'zstd' | 'none';
    parallel?: number;
  }): Promise<void>;
  destroy(): Promise<void>;
}

/** `cluster`: initdb arguments and settings of the world's cluster (archive_command is the world's). */
export async function makeSshWorld(opts: { readonly cluster?: Omit<ClusterOptions, 'archiveCommand'> } = {}): Promise<SshWorld> {
  const sshd = await startSshd();
  const root = await tempDir('pgbk-sshw-');
  const catalog = path.join(root, 'catalog');
  const incoming = path.join(catalog, 'main', 'incoming');
  await mkdir(path.join(catalog, 'main'), { recursive: true, mode: 0o711 });
  await mkdir(incoming, { mode: 0o770 });
  await chownToPostgres(incoming);
  const archiveCommand = `test ! -f ${incoming}/%f && cp %p ${incoming}/.%f.tmp && mv ${incoming}/.%f.tmp ${incoming}/%f`;
  const cluster = await startCluster({ ...(opts.cluster ?? {}), archiveCommand });
  const configPath = path.join(root, 'pgbk.yaml');
  const world: SshWorld = {
    root,
    catalog,
    configPath,
    cluster,
    sshd,
    pgbk: (args, opts = {}) => runPgbk(['--config', configPath, ...args], opts),
    async writeConfig(o = {}) {
      const psql = o.psqlConnection === null ? undefined : (o.psqlConnection ?? `host=${cluster.socketDir} port=${cluster.port} user=postgres dbname=postgres`);
      const agent = o.agent ?? `${process.execPath} ${CLI}`;
      await writeFile(
        configPath,
        [
          `catalog: ${catalog}`,
          'defaults: { compression: none }',
          'servers:',
          '  main:',
          ...(o.withConnection === true ? [`    connection: "${cluster.conninfo}"`] : []),
          `    pgdata: ${cluster.pgdata}`,
          `    ssh: { host: 127.0.0.1, port: ${sshd.port}, user: postgres, identityFile: ${sshd.identityFile}, knownHosts: ${sshd.knownHosts}, ${psql === undefined ? '' : `psqlConnection: "${psql}", `}pgbk: "${agent}" }`,
          `    backup: { method: ssh${o.backupCompression === undefined ? '' : `, compression: ${o.backupCompression}`}${o.parallel === undefined ? '' : `, parallel: ${o.parallel}`} }`,
          '    retention: { redundancy: 10 }',
          ...(o.extra === undefined ? [] : [o.extra]),
          '',
        ].join('\n'),
      );
    },
    async destroy() {
      await cluster.destroy();
      await sshd.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
  await world.writeConfig();
  return world;
}

/**
 * Restore an `ssh` backup by hand: rebuild data/ from its chunks into a fresh directory (the
 * function `pgbk restore` uses, checking every chunk's sha256), give it to
 * postgres, add recovery.signal and a restore_command that copies from a postgres-readable copy of
 * the archive (compression none), start PostgreSQL and wait until it is out of recovery.
 */
export async function restoreByCopy(w: SshWorld, backupId: string): Promise<TestCluster> {
  const src = path.join(w.catalog, 'main', 'backups', backupId);
  const dest = await tempDir('pgbk-sshrestore-');
  const pgdata = path.join(dest, 'data');
  await mkdir(pgdata, { mode: 0o700 });
  await copyTreeInto(storedTreeAt(src), 'data', pgdata, 'main');
  const walCopy = path.join(dest, 'wal');
  await mkdir(walCopy);
  const walRoot = path.join(w.catalog, 'main', 'wal');
  for (const d of await readdir(walRoot, { withFileTypes: true })) {
    if (d.isDirectory())
      for (const f of await readdir(path.join(walRoot, d.name))) if (f !== 'SHA256SUMS') await cp(path.join(walRoot, d.name, f), path.join(walCopy, f));
    if (d.isFile() && d.name.endsWith('.history')) await cp(path.join(walRoot, d.name), path.join(walCopy, d.name));
  }
  await writeFile(path.join(pgdata, 'recovery.signal'), '');
  await chownToPostgres(dest);
  await chmod(dest, 0o711);
  return startClusterOn(pgdata, {
    conf: { restore_command: `cp ${walCopy}/%f %p`, archive_mode: 'off' },
  });
}

export async function waitPromoted(c: TestCluster): Promise<void> {
  await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 90_000);
}

/** PIDs of every process below `pid` (children of our own sshd: its per-connection processes). */
export async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const byParent = new Map<number, number[]>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = byParent.get(ppid) ?? [];
      list.push(Number(name));
      byParent.set(ppid, list);
    } catch {
      // gone
    }
  }
  const walk = (p: number): void => {
    for (const c of byParent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export async function switchAndArchive(w: SshWorld): Promise<void> {
  // Wait for the segment the switch closed, not for "the current one": WAL written after the
  // switch (autovacuum, a checkpoint) moves the current position into a segment nobody archives yet.
  const closed = (await w.cluster.sql('SELECT pg_walfile_name(pg_switch_wal())')).trim();
  await waitForQuery(w.cluster, `SELECT coalesce(last_archived_wal >= '${closed}', false) FROM pg_stat_archiver`, 't', 30_000);
  void pexec;
}
