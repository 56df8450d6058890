/**
 * Benchmarks for the SSH path (issue #4), on a `pgbench -s 50` cluster reached over loopback SSH
 * (private sshd from test/support):
 *  - full `ssh` backup vs `ssh host tar -cf - -C PGDATA . | tar -xf -` (target ≤ 1.2);
 *  - incremental after updating ~5% of pgbench_accounts (one contiguous slice) vs the full:
 *    time ratio (target ≤ 0.6) and new bytes stored / full (Barman reuse_backup=link and
 *    pgBackRest incr stored ~0.71 here; the ideal 8 KiB-block delta ~0.09);
 *  - `pgbench -c 4 -T 60 -N` with archive_command = pgbk wal-push over SSH vs 'true': TPS ratio
 *    (target ≥ 0.9; reported as true/wal-push so that lower is better like the others) and the
 *    .ready backlog 10 s after pgbench ends.
 * PGBK_BENCH_SSH_SCALE and PGBK_BENCH_SSH_SECONDS shrink the run for a quick look;
 * PGBK_BENCH_SSH_PUSH_ONLY=1 runs only the wal-push/pgbench part.
 */

import { spawn } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { CopiedBackup } from '../src/model/types.js';
import { CLI } from '../test/support/pgbk.js';
import { PG_BINDIR, tempDir } from '../test/support/postgres.js';
import { makeSshWorld, type SshWorld } from '../test/integration/ssh/world.js';
import { runProcess, sleep, timed } from './process.js';
import type { BenchResult } from './restore.js';

const SCALE = Number(process.env['PGBK_BENCH_SSH_SCALE'] ?? '50');
const SECONDS = Number(process.env['PGBK_BENCH_SSH_SECONDS'] ?? '60');
const PUSH_ONLY = process.env['PGBK_BENCH_SSH_PUSH_ONLY'] === '1';

/** ssh … tar -cf - | tar -xf -: two processes joined by a pipe, no shell. */
function sshTarReference(w: SshWorld, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ssh = spawn(
      'ssh',
      [
        '-p',
        String(w.sshd.port),
        '-i',
        w.sshd.identityFile,
        '-o',
        `UserKnownHostsFile=${w.sshd.knownHosts}`,
        '-o',
        'BatchMode=yes',
        'postgres@127.0.0.1',
        'tar',
        '-cf',
        '-',
        '-C',
        w.cluster.pgdata,
        '.',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const tar = spawn('tar', ['-xf', '-', '-C', dest], { stdio: ['pipe', 'ignore', 'inherit'] });
    ssh.stdout.pipe(tar.stdin);
    let left = 2;
    const done = (): void => {
      if (--left === 0) resolve();
    };
    ssh.once('error', reject);
    tar.once('error', reject);
    ssh.once('close', done); // tar exits 1 on files changed while read: not a failure here
    tar.once('close', (code) => (code === 0 ? done() : reject(new Error(`tar -x exit ${String(code)}`))));
  });
}

async function latest(w: SshWorld): Promise<CopiedBackup> {
  const r = await w.pgbk(['show', 'main', 'latest', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  // `show --json` wraps the record: { backup: {...}, ... }.
  const rec = (JSON.parse(r.stdout) as { backup?: CopiedBackup }).backup;
  if (rec === undefined || (rec.status !== 'DONE' && rec.status !== 'WAITING_FOR_WAL'))
    throw new Error(`show --json: no copied backup in ${r.stdout.slice(0, 200)}`);
  return rec;
}

async function backup(w: SshWorld): Promise<void> {
  const r = await w.pgbk(['backup', 'main']);
  if (r.code !== 0) throw new Error(`pgbk backup: ${r.stderr}`);
}

async function pgbenchTps(w: SshWorld): Promise<number> {
  const c = w.cluster;
  const out = await runProcess(path.join(PG_BINDIR, 'pgbench'), [
    '-c',
    '4',
    '-T',
    String(SECONDS),
    '-N',
    '-h',
    c.socketDir,
    '-p',
    String(c.port),
    '-U',
    'postgres',
    'postgres',
  ]);
  const tps = /tps = ([\d.]+)/.exec(out.stdout)?.[1];
  if (tps === undefined) throw new Error(`no tps in pgbench output: ${out.stdout.slice(-500)}`);
  return Number(tps);
}

async function setArchiveCommand(w: SshWorld, cmd: string): Promise<void> {
  await w.cluster.sql(`ALTER SYSTEM SET archive_command = '${cmd.replace(/'/g, "''")}'`);
  await w.cluster.sql('SELECT pg_reload_conf()');
  await sleep(500);
}

async function readyCount(w: SshWorld): Promise<number> {
  return (await readdir(path.join(w.cluster.pgdata, 'pg_wal', 'archive_status'))).filter((n) => n.endsWith('.ready')).length;
}

/** Archive the WAL already in incoming/, so a timed backup measures the copy, not that backlog. */
async function archivePending(w: SshWorld): Promise<void> {
  await w.cluster.sql('SELECT pg_switch_wal()');
  await sleep(1000);
  const r = await w.pgbk(['apply']);
  if (r.code !== 0) throw new Error(`pgbk apply: ${r.stderr}`);
}

export async function benchSsh(): Promise<BenchResult[]> {
  const w = await makeSshWorld();
  const results: BenchResult[] = [];
  try {
    const c = w.cluster;
    await runProcess(path.join(PG_BINDIR, 'pgbench'), ['-i', '-s', String(SCALE), '-q', '-h', c.socketDir, '-p', String(c.port), '-U', 'postgres', 'postgres']);
    await c.sql('CHECKPOINT');
    await sleep(2500); // let files age past the reuse margin, as on any real server
    await archivePending(w);
    if (PUSH_ONLY) return [await benchWalPushTps(w)];

    const ref = await tempDir('pgbk-bench-sshtar-');
    const refS = await timed(() => sshTarReference(w, ref));
    await rm(ref, { recursive: true, force: true });
    const fullS = await timed(() => backup(w));
    const full = await latest(w);
    results.push({
      name: 'ssh full backup',
      pgbk_s: fullS,
      reference_s: refS,
      ratio: fullS / refS,
      note: `${((full.copiedBytes ?? 0) / 1048576).toFixed(0)} MiB copied; reference: ssh tar -c | tar -x`,
    });

    const rows = 100_000 * SCALE;
    await c.sql(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${Math.floor(rows * 0.05)}`);
    await c.sql('CHECKPOINT');
    await archivePending(w);
    const incrS = await timed(() => backup(w));
    const incr = await latest(w);
    const storedRatio = (incr.copiedBytes ?? 0) / Math.max(1, full.copiedBytes ?? 1);
    results.push({
      name: 'ssh incremental backup (5% of pgbench_accounts updated)',
      pgbk_s: incrS,
      reference_s: fullS,
      ratio: incrS / fullS,
      note: `time vs the full; new bytes stored ${storedRatio.toFixed(2)}× the full (Barman link / pgBackRest incr ~0.71×, 8 KiB-block ideal ~0.09×), ${((incr.reusedBytes ?? 0) / 1048576).toFixed(0)} MiB hard-linked`,
    });
    // Storage of the same incremental as its own row (bytes, not seconds: pgbk_s/reference_s hold MiB).
    results.push({
      name: 'ssh stored by the incremental vs the full (new bytes)',
      pgbk_s: (incr.copiedBytes ?? 0) / 1048576,
      reference_s: (full.copiedBytes ?? 0) / 1048576,
      ratio: storedRatio,
      note: `MiB, not seconds: ${((incr.copiedBytes ?? 0) / 1048576).toFixed(0)} MiB new vs ${((full.copiedBytes ?? 0) / 1048576).toFixed(0)} MiB (1 MiB chunks; Barman/pgBackRest ~0.71×, 8 KiB-block ideal ~0.09×)`,
    });

    results.push(await benchWalPushTps(w));
  } finally {
    await w.destroy();
  }
  return results;
}

/**
 * pgbench -c 4 -N with wal-push over SSH vs archive_command = 'true' (run before and after, their
 * mean is the reference: other load on the machine drifts). The archive_command is the one
 * `wal-push --print-archive-command` recommends: the shell fast path, then the tiny client.
 */
async function benchWalPushTps(w: SshWorld): Promise<BenchResult> {
  const c = w.cluster;
  await setArchiveCommand(w, 'true');
  const tpsTrueBefore = await pgbenchTps(w);
  const catalog2 = path.join(w.root, 'catalog-push');
  await mkdir(catalog2);
  const printed = await w.pgbk(
    [
      'wal-push',
      '--to',
      `ssh://root@127.0.0.1:${w.sshd.port}${catalog2}`,
      '--identity',
      w.sshd.postgresIdentityFile,
      '--known-hosts',
      w.sshd.knownHosts,
      '--remote-pgbk',
      `${process.execPath} ${CLI}`,
      '--compression',
      'zstd',
      '--print-archive-command',
      '--pgdata',
      c.pgdata,
      'main',
    ],
    { asPostgres: true },
  );
  if (printed.code !== 0) throw new Error(`wal-push --print-archive-command: ${printed.stderr}`);
  await setArchiveCommand(w, printed.stdout.trim());
  await c.sql('SELECT pg_switch_wal()');
  await sleep(2000);
  const before = Number((await c.sql('SELECT archived_count FROM pg_stat_archiver')).trim());
  const tpsPush = await pgbenchTps(w);
  await sleep(10_000);
  const backlog = await readyCount(w);
  const stats = (await c.sql('SELECT archived_count, failed_count FROM pg_stat_archiver')).split('|');
  // Stop archiving into the worker (it exits after its idle period).
  await setArchiveCommand(w, 'true');
  const tpsTrueAfter = await pgbenchTps(w);
  const tpsTrue = (tpsTrueBefore + tpsTrueAfter) / 2;
  return {
    name: 'pgbench -c 4 -N with wal-push over SSH',
    pgbk_s: 1 / tpsPush,
    reference_s: 1 / tpsTrue,
    ratio: tpsTrue / tpsPush,
    note:
      `tps ${tpsPush.toFixed(0)} vs ${tpsTrue.toFixed(0)} (${tpsTrueBefore.toFixed(0)} before, ${tpsTrueAfter.toFixed(0)} after) with archive_command=true ` +
      `(TPS ratio ${(tpsPush / tpsTrue).toFixed(2)}, target ≥ 0.9); ${Number(stats[0]) - before} files archived, ${stats[1]} failures; .ready backlog 10 s after: ${backlog}`,
  };
}
