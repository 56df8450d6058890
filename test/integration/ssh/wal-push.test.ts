/**
 * wal-push over SSH under pgbench load: PostgreSQL's archive_command is the tiny client, one
 * long-lived worker holds the SSH connection (one handshake for the whole run) and pushes ahead;
 * every segment ends up in the remote catalog, verified, with no .ready backlog; a bad file is
 * refused with the archive's reason and a non-zero exit.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readIdentity } from '../../../src/catalog/identity.js';
import { listArchivedWal, readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { readWalHeader } from '../../../src/pg/wal-header.js';
import { optionsFrom, runtimeDir, workerKey } from '../../../src/wal-push/target.js';
import { CLI, runPgbk } from '../../support/pgbk.js';
import { chownToPostgres, PG_BINDIR, startCluster, tempDir, type TestCluster } from '../../support/postgres.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';

const pexec = promisify(execFile);
const POSTGRES_UID = 101;

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

interface Ctx {
  sshd?: TestSshd;
  root?: string;
  cluster?: TestCluster;
  pushArgs: string[];
  keys: string[];
}

const t = suite<Ctx>('wal-push over SSH', { pushArgs: [], keys: [] });

function postgresRuntimeDir(): string {
  return runtimeDir().replace(/pgbk-\d+$/, `pgbk-${POSTGRES_UID}`);
}

async function workerPids(key: string): Promise<number[]> {
  const dir = postgresRuntimeDir();
  const text = await readFile(path.join(dir, `walpush-${key}.log`), 'utf8').catch(() => '');
  return [...new Set([...text.matchAll(/wal-push-worker\[(\d+)\]/g)].map((m) => Number(m[1])))];
}

async function logText(key: string): Promise<string> {
  const dir = runtimeDir().replace(/pgbk-\d+$/, `pgbk-${POSTGRES_UID}`);
  return readFile(path.join(dir, `walpush-${key}.log`), 'utf8').catch(() => '');
}

t.before(async (ctx) => {
  ctx.sshd = await startSshd();
  ctx.root = await tempDir('pgbk-walpush-');
  const catalog = path.join(ctx.root, 'catalog');
  await mkdir(catalog);
  ctx.pushArgs = [
    '--to',
    `ssh://root@127.0.0.1:${ctx.sshd.port}${catalog}`,
    '--identity',
    ctx.sshd.postgresIdentityFile,
    '--known-hosts',
    ctx.sshd.knownHosts,
    '--remote-pgbk',
    `${process.execPath} ${CLI}`,
    '--compression',
    'zstd',
  ];
  const archiveCommand = [process.execPath, CLI, 'wal-push', ...ctx.pushArgs, 'main'].map(shQuote).join(' ') + ' %p';
  ctx.cluster = await startCluster({ archiveCommand });
});

t.after(async (ctx) => {
  await ctx.cluster?.destroy();
  for (const key of ctx.keys) {
    for (const pid of await workerPids(key)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // exited already
      }
    }
  }
  await ctx.sshd?.stop();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t('pgbench load is archived over one SSH connection, every segment verified, no backlog', async (ctx) => {
  const c = ctx.cluster!;
  const opts = optionsFrom(
    { to: ctx.pushArgs[1], identity: ctx.pushArgs[3], 'known-hosts': ctx.pushArgs[5], 'remote-pgbk': ctx.pushArgs[7], compression: 'zstd' },
    'main',
  );
  const key = workerKey(opts, c.pgdata);
  ctx.keys.push(key);
  const pgbench = path.join(PG_BINDIR, 'pgbench');
  const conn = ['-h', c.socketDir, '-p', String(c.port), '-U', 'postgres'];
  // Scale 6 writes ~6 segments of WAL at init, the run at least one more: enough for the ≥ 5
  // below at half the time of scale 10 and a 20 s run.
  await pexec(pgbench, ['-i', '-s', '6', '-q', ...conn, 'postgres'], { maxBuffer: 1 << 24 });
  const bench = await pexec(pgbench, ['-c', '4', '-T', '8', '-N', ...conn, 'postgres'], { maxBuffer: 1 << 24 });
  const tps = /tps = ([\d.]+)/.exec(bench.stdout)?.[1];
  await c.sql('SELECT pg_switch_wal()');
  const ended = Date.now();
  let ready: string[] = [];
  while (Date.now() - ended < 30_000) {
    ready = (await readdir(path.join(c.pgdata, 'pg_wal', 'archive_status'))).filter((n) => n.endsWith('.ready'));
    if (ready.length === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(ready, [], `backlog left: ${ready.join(', ')}\n${await logText(key)}`);
  const stats = (await c.sql('SELECT archived_count, failed_count, last_archived_wal FROM pg_stat_archiver')).split('|');
  const archivedCount = Number(stats[0]);
  assert.ok(archivedCount >= 5, `only ${archivedCount} archived`);
  assert.is(stats[1], '0', `archive failures:\n${await logText(key)}\n${c.logTail(20)}`);

  const catalog = path.join(ctx.root!, 'catalog');
  const archived = await listArchivedWal(catalog, 'main');
  const last = stats[2]!;
  assert.ok(archived.segments.includes(last), `${last} not in the remote catalog`);
  const identity = await readIdentity(catalog, 'main');
  const sysid = await c.sql('SELECT system_identifier FROM pg_control_system()');
  assert.is(identity?.systemIdentifier, sysid);
  // Contiguous from the first archived segment to the last, each readable and checksum-verified.
  const first = archived.segments[0]!;
  const segs = archived.segments.filter((s) => s <= last);
  assert.is(parseInt(last.slice(16), 16) - parseInt(first.slice(16), 16) + 1, segs.length, 'gap in the archive');
  for (const s of segs) {
    const buf = await readArchivedWal(catalog, 'main', s);
    assert.is(readWalHeader(buf)?.systemIdentifier, sysid);
  }
  // One worker, one SSH handshake, for the whole run.
  const log = await logText(key);
  assert.is((log.match(/connected to ssh/g) ?? []).length, 1, log);
  console.log(`    pgbench tps ${tps}; ${archivedCount} WAL files archived over one SSH connection`);
});

t('a file that is not valid WAL is refused with the reason and exit 1', async (ctx) => {
  const dir = await tempDir('pgbk-fakewal-');
  await mkdir(path.join(dir, 'pg_wal'));
  const fake = path.join(dir, 'pg_wal', '000000010000000000000099');
  await writeFile(fake, Buffer.alloc(16 * 1024 * 1024, 7));
  await chownToPostgres(dir);
  const opts = optionsFrom(
    { to: ctx.pushArgs[1], identity: ctx.pushArgs[3], 'known-hosts': ctx.pushArgs[5], 'remote-pgbk': ctx.pushArgs[7], compression: 'zstd' },
    'main',
  );
  ctx.keys.push(workerKey(opts, dir));
  const r = await runPgbk(['wal-push', ...ctx.pushArgs, 'main', fake], { asPostgres: true, cwd: dir });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /refusing 000000010000000000000099/);
  const catalog = path.join(ctx.root!, 'catalog');
  assert.not.ok((await listArchivedWal(catalog, 'main')).segments.includes('000000010000000000000099'));
  // Refused: no acknowledgement marker, so the fast path can never answer for it.
  const marker = path.join(postgresRuntimeDir(), `walpush-${workerKey(opts, dir)}.acked`, '000000010000000000000099');
  assert.is(await readFile(marker, 'utf8').catch(() => 'none'), 'none');
  await rm(dir, { recursive: true, force: true });
});

t("the fast-path archive_command acknowledges from the worker's markers without starting the client", async (ctx) => {
  const c = ctx.cluster!;
  const printed = await runPgbk(['wal-push', ...ctx.pushArgs, '--print-archive-command', '--pgdata', c.pgdata, 'main'], { asPostgres: true });
  assert.is(printed.code, 0, printed.stderr);
  const command = printed.stdout.trim();
  assert.match(command, /\[ -f "\$m" \] && \[ %p -nt "\$m" \] && \[ %p -ot "\$m\.hi" \]/);
  // Count the runs of the real client: wrap the exec of the fallback.
  const dir = await tempDir('pgbk-fastpath-');
  const counter = path.join(dir, 'count.sh');
  const runs = path.join(dir, 'runs');
  await writeFile(counter, `#!/bin/sh\necho "$*" >> ${runs}\nexec "$@"\n`, { mode: 0o755 });
  await writeFile(runs, '');
  await chownToPostgres(dir);
  assert.ok(command.includes(' exec /'), command);
  const counted = command.replace(' exec /', ` exec ${counter} /`);
  await c.sql(`ALTER SYSTEM SET archive_command = '${counted.replace(/'/g, "''")}'`);
  await c.sql('SELECT pg_reload_conf()');
  const before = Number((await c.sql('SELECT archived_count FROM pg_stat_archiver')).trim());
  const segments = 6;
  await c.sql('CREATE TABLE IF NOT EXISTS fastpath (x int)');
  for (let i = 0; i < segments; i++) {
    await c.sql('INSERT INTO fastpath SELECT generate_series(1, 1000)');
    await c.sql('SELECT pg_switch_wal()');
    await new Promise((r) => setTimeout(r, 300));
  }
  let ready: string[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < 30_000) {
    ready = (await readdir(path.join(c.pgdata, 'pg_wal', 'archive_status'))).filter((n) => n.endsWith('.ready'));
    if (ready.length === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(ready, [], `backlog left: ${ready.join(', ')}`);
  const stats = (await c.sql('SELECT archived_count, failed_count, last_archived_wal FROM pg_stat_archiver')).split('|');
  const archivedNow = Number(stats[0]) - before;
  assert.ok(archivedNow >= segments, `only ${archivedNow} archived`);
  assert.is(stats[1], '0');
  const archived = await listArchivedWal(path.join(ctx.root!, 'catalog'), 'main');
  assert.ok(archived.segments.includes(stats[2]!), `${stats[2]} not in the remote catalog`);
  const clientRuns = (await readFile(runs, 'utf8')).split('\n').filter((l) => l !== '').length;
  assert.ok(clientRuns <= archivedNow / 2, `the client ran ${clientRuns} times for ${archivedNow} files`);
  // Markers of files PostgreSQL is done with are removed by the worker's next scans.
  const opts = optionsFrom(
    { to: ctx.pushArgs[1], identity: ctx.pushArgs[3], 'known-hosts': ctx.pushArgs[5], 'remote-pgbk': ctx.pushArgs[7], compression: 'zstd' },
    'main',
  );
  const markers = path.join(postgresRuntimeDir(), `walpush-${workerKey(opts, c.pgdata)}.acked`);
  let left: string[] = [];
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 250));
    left = (await readdir(markers)).filter((m) => !m.startsWith('.'));
    if (left.length === 0) break;
  }
  assert.equal(left, []);
  console.log(`    fast path: ${archivedNow} files archived, the real client ran ${clientRuns} times`);
  await rm(dir, { recursive: true, force: true });
});

t.run();
