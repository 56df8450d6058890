// test-lane: light — restores with tablespaces added later; only 60-90 s waits
/**
 * A restore never writes into a tablespace of the source (issue 9, items 1 and 3). The source
 * creates a tablespace *after* the base backup: PostgreSQL's replay of that CREATE TABLESPACE would
 * link pg_tblspc/<oid> to the source's own directory (and, in PostgreSQL 15, first rmtree its
 * version directory). `pgbk restore` and `restore --remote` must find the record in the archived
 * WAL before writing anything and refuse, name the OID, the path and what to do instead; a target
 * before the record restores (proven by PostgreSQL: the rows are there, the source's tablespace
 * untouched); --allow-new-tablespaces lets it through. pgbk's WAL reader agrees with pg_waldump.
 * And --force never deletes the catalog through a symbolic link (target dir or catalog path).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../src/catalog/backups.js';
import { listArchivedWal, readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { isCopied } from '../../../src/model/types.js';
import { CLI, runPgbk, type RunResult } from '../../support/pgbk.js';
import { chownToPostgres, PG_BINDIR, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';

const SERVER = 'src';

interface Ctx {
  root?: string;
  catalog?: string;
  config?: string;
  source?: TestCluster;
  sshd?: TestSshd;
  tsDir?: string;
  tsOid?: string;
  backupId?: string;
}

const t = suite<Ctx>('restore: tablespaces created in the WAL to replay; catalog behind symbolic links', {});

async function waitArchived(ctx: Ctx, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await listArchivedWal(ctx.catalog!, SERVER)).segments.includes(name)) {
    if (Date.now() > deadline) throw new Error(`${name} was not archived\n${ctx.source!.logTail(20)}`);
    await sleep(100);
  }
}

async function switchAndArchive(ctx: Ctx): Promise<void> {
  const name = await ctx.source!.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
  await ctx.source!.sql('SELECT pg_switch_wal()');
  await waitArchived(ctx, name);
}

function restore(ctx: Ctx, args: readonly string[], config = ctx.config!): Promise<RunResult> {
  return runPgbk(['restore', SERVER, '--config', config, ...args]);
}

function remote(ctx: Ctx, args: readonly string[]): Promise<RunResult> {
  return restore(ctx, [
    '--remote',
    `postgres@127.0.0.1:${ctx.sshd!.port}`,
    '--identity',
    ctx.sshd!.identityFile,
    '--known-hosts',
    ctx.sshd!.knownHosts,
    ...args,
  ]);
}

function run(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

t.before(async (ctx) => {
  try {
    ctx.root = await tempDir('pgbk-newts-');
    ctx.catalog = path.join(ctx.root, 'catalog');
    ctx.config = path.join(ctx.root, 'pgbk.yaml');
    ctx.tsDir = path.join(ctx.root, 'source-ts'); // a throwaway stand-in for the production tablespace
    await mkdir(ctx.catalog);
    await mkdir(ctx.tsDir);
    await chownToPostgres(ctx.catalog);
    await chownToPostgres(ctx.tsDir);
    const source = await startCluster({
      archiveCommand: `${process.execPath} ${CLI} wal-push --config ${ctx.config} ${SERVER} %p`,
      conf: { wal_keep_size: '0' },
    });
    ctx.source = source;
    await writeFile(
      ctx.config,
      [`catalog: ${ctx.catalog}`, 'servers:', `  ${SERVER}:`, `    connection: "${source.conninfo}"`, '    retention: { redundancy: 2 }', ''].join('\n'),
    );
    await chmod(ctx.config, 0o644);
    await source.sql('CREATE TABLE t (step int PRIMARY KEY)');
    await source.sql('INSERT INTO t VALUES (0)');
    await switchAndArchive(ctx);
    const b = await runPgbk(['backup', SERVER, '--config', ctx.config]);
    assert.is(b.code, 0, `pgbk backup: ${b.stderr}`);
    const done = (await readBackups(ctx.catalog, SERVER)).filter((x) => x.status === 'DONE');
    assert.is(done.length, 1, b.stderr);
    ctx.backupId = done[0]!.id;
    await source.sql('INSERT INTO t VALUES (1)');
    await source.sql(`SELECT pg_create_restore_point('before_ts')`);
    await source.sql(`CREATE TABLESPACE ts LOCATION '${ctx.tsDir}'`);
    ctx.tsOid = await source.sql(`SELECT oid FROM pg_tablespace WHERE spcname = 'ts'`);
    await source.sql('CREATE TABLE tt (x int) TABLESPACE ts');
    await source.sql('INSERT INTO tt VALUES (42)');
    await source.sql('INSERT INTO t VALUES (2)');
    await source.sql(`SELECT pg_create_restore_point('after_ts')`);
    await switchAndArchive(ctx);
    ctx.sshd = await startSshd();
  } catch (err) {
    process.stderr.write(`setup failed: ${(err as Error).stack ?? String(err)}\n`);
    throw err;
  }
});

t.after(async (ctx) => {
  await ctx.source?.destroy();
  await ctx.sshd?.stop();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

/** The LSN and the hinted target of the refusal message. */
function refusal(r: RunResult, ctx: Ctx): { lsn: string; hintLsn: string } {
  assert.is(r.code, 1, `expected a refusal:\n${r.stdout}${r.stderr}`);
  const m = new RegExp(
    `creates tablespace ${ctx.tsOid} at ${ctx.tsDir!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(CREATE TABLESPACE at LSN ([0-9A-F]+/[0-9A-F]+), WAL segment [0-9A-F]{24}\\)`,
  ).exec(r.stderr);
  assert.ok(m, `the refusal names the OID, path and LSN:\n${r.stderr}`);
  assert.match(r.stderr, /Refusing; nothing was written/);
  assert.match(r.stderr, /restore from a backup taken after the tablespace was created/);
  assert.match(r.stderr, /--allow-new-tablespaces/);
  const hint = /--target-lsn ([0-9A-F]+\/[0-9A-F]+)/.exec(r.stderr);
  assert.ok(hint, r.stderr);
  return { lsn: m[1]!, hintLsn: hint[1]! };
}

t('a restore whose WAL creates a tablespace is refused before anything is written, even with --force', async (ctx) => {
  const dir = path.join(ctx.root!, 'restore-latest');
  const latest = await restore(ctx, ['--target-dir', dir]);
  const { lsn } = refusal(latest, ctx);
  assert.not.ok(existsSync(dir), 'the target directory was created');
  assert.not.ok(existsSync(`${dir}_tablespaces`));
  // --force on a non-empty directory: refused before its contents are deleted.
  await mkdir(dir);
  await writeFile(path.join(dir, 'keep-me'), 'x');
  const forced = await restore(ctx, ['--target-dir', dir, '--force', '--target-name', 'after_ts']);
  refusal(forced, ctx);
  assert.equal(await readdir(dir), ['keep-me']);
  await rm(dir, { recursive: true });
  // Inclusive LSN target at the record itself: replayed, so refused.
  refusal(await restore(ctx, ['--target-dir', dir, '--target-lsn', lsn]), ctx);
  assert.not.ok(existsSync(dir));
  const [b] = await readBackups(ctx.catalog!, SERVER);
  assert.is(b?.status === 'DONE' ? b.inUse : undefined, undefined, 'the backup was marked in use');
});

t("pgbk's WAL reader finds what pg_waldump --rmgr=Tablespace finds in the archived WAL", async (ctx) => {
  const { lsn } = refusal(await restore(ctx, ['--target-dir', path.join(ctx.root!, 'x')]), ctx);
  const walDir = path.join(ctx.root!, 'waldump');
  await mkdir(walDir);
  const segs = (await listArchivedWal(ctx.catalog!, SERVER)).segments;
  const backup = (await readBackups(ctx.catalog!, SERVER))[0]!;
  if (!isCopied(backup)) throw new Error(`backup ${backup.id} is ${backup.status}`);
  const range = segs.filter((s) => s >= backup.beginWal);
  for (const s of range) await writeFile(path.join(walDir, s), await readArchivedWal(ctx.catalog!, SERVER, s));
  const d = await run(path.join(PG_BINDIR, 'pg_waldump'), ['-p', walDir, '--rmgr=Tablespace', range[0]!, range[range.length - 1]!]);
  const creates = [...d.stdout.matchAll(/lsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F/]+, desc: CREATE (\d+) "([^"]*)"/g)];
  assert.is(creates.length, 1, `pg_waldump: ${d.stdout}${d.stderr}`);
  const [, dumpLsn, oid, location] = creates[0]!;
  assert.is(oid, ctx.tsOid);
  assert.is(location, ctx.tsDir);
  const norm = (x: string): string => x.replace(/\/0+(?=[0-9A-F])/, '/');
  assert.is(norm(dumpLsn!), lsn);
  await rm(walDir, { recursive: true });
});

t('a target before the CREATE TABLESPACE record restores, and PostgreSQL never touches the source tablespace', async (ctx) => {
  const { hintLsn } = refusal(await restore(ctx, ['--target-dir', path.join(ctx.root!, 'x')]), ctx);
  const sourceTs = await readdir(ctx.tsDir!);
  for (const [name, target] of [
    ['name', ['--target-name', 'before_ts']],
    ['lsn', ['--target-lsn', hintLsn]],
  ] as const) {
    const dir = path.join(ctx.root!, `restore-before-${name}`);
    const r = await restore(ctx, ['--target-dir', dir, ...target, '--target-action', 'promote', '--no-archive']);
    assert.is(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stderr, /checked \d+ WAL segments? to replay for CREATE TABLESPACE in [\d.]+ s: none/);
    const c = await startClusterOn(dir, { conf: { archive_mode: 'off' } });
    try {
      await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 90_000);
      assert.is(await c.sql(`SELECT string_agg(step::text, ',' ORDER BY step) FROM t`), '0,1', `${name}\n${c.logTail(20)}`);
      assert.is(await c.sql(`SELECT count(*) FROM pg_tablespace WHERE spcname = 'ts'`), '0');
      assert.not.ok(existsSync(path.join(dir, 'pg_tblspc', ctx.tsOid!)));
    } finally {
      await c.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  }
  assert.equal(await readdir(ctx.tsDir!), sourceTs, "the source's tablespace directory changed");
  assert.is(await ctx.source!.sql('SELECT x FROM tt'), '42');
});

t('--allow-new-tablespaces restores anyway, and says where the tablespace will be created', async (ctx) => {
  const dir = path.join(ctx.root!, 'restore-allowed');
  const r = await restore(ctx, ['--target-dir', dir, '--allow-new-tablespaces', '--json']);
  assert.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { warnings: string[] };
  assert.ok(
    summary.warnings.some((w) => w.includes(`tablespace ${ctx.tsOid} at ${ctx.tsDir}`)),
    JSON.stringify(summary.warnings),
  );
  assert.ok(existsSync(path.join(dir, 'PG_VERSION')));
  // Not started: its replay would link pg_tblspc/<oid> to the source's directory on this host.
  await rm(dir, { recursive: true, force: true });
});

t('restore --remote: refused before anything is written on the database host; a target before the record goes through', async (ctx) => {
  const dest = await tempDir('pgbk-newts-rr-');
  await chownToPostgres(dest);
  try {
    const data = path.join(dest, 'data');
    refusal(await remote(ctx, ['--target-dir', data]), ctx);
    assert.equal(await readdir(dest), [], 'something was written on the database host');
    const ok = await remote(ctx, ['--target-dir', data, '--target-name', 'before_ts']);
    assert.is(ok.code, 0, ok.stderr);
    assert.ok(existsSync(path.join(data, 'PG_VERSION')));
    const allowed = await remote(ctx, ['--target-dir', path.join(dest, 'data2'), '--allow-new-tablespaces']);
    assert.is(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, new RegExp(`warning: --allow-new-tablespaces: recovery will create tablespace ${ctx.tsOid} at `));
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
});

t('--force cannot reach the catalog through a symbolic link: target dir, catalog path, --remote', async (ctx) => {
  const backups = path.join(ctx.catalog!, SERVER, 'backups');
  const before = await readdir(backups);
  assert.ok(before.includes(ctx.backupId!));
  const link = path.join(ctx.root!, 'l');
  await symlink(path.join(ctx.catalog!, SERVER), link);
  const viaLink = await restore(ctx, ['--target-dir', path.join(link, 'backups'), '--force', '--target-name', 'before_ts']);
  assert.is(viaLink.code, 1, viaLink.stderr);
  assert.match(viaLink.stderr, /--target-dir .*\/l\/backups \(really .*\/catalog\/src\/backups\) overlaps the catalog/);
  // A path below the link that does not exist yet resolves through the link as well.
  const deeper = await restore(ctx, ['--target-dir', path.join(link, 'backups', 'new', 'dir'), '--target-name', 'before_ts']);
  assert.is(deeper.code, 1, deeper.stderr);
  assert.match(deeper.stderr, /overlaps the catalog/);
  // The catalog itself configured through a symbolic link: its real directory is as protected.
  const catLink = path.join(ctx.root!, 'catalog-link');
  await symlink(ctx.catalog!, catLink);
  const config2 = path.join(ctx.root!, 'pgbk-link.yaml');
  await writeFile(
    config2,
    [`catalog: ${catLink}`, 'servers:', `  ${SERVER}:`, `    connection: "${ctx.source!.conninfo}"`, '    retention: { redundancy: 2 }', ''].join('\n'),
  );
  const viaCatLink = await restore(ctx, ['--target-dir', backups, '--force', '--target-name', 'before_ts'], config2);
  assert.is(viaCatLink.code, 1, viaCatLink.stderr);
  assert.match(viaCatLink.stderr, /overlaps the catalog .*catalog-link \(really .*\/catalog\)/);
  // --remote onto this same host: resolved there.
  await chownToPostgres(ctx.catalog!);
  const rr = await remote(ctx, ['--target-dir', path.join(link, 'restored-here'), '--target-name', 'before_ts']);
  assert.is(rr.code, 1, rr.stderr);
  assert.match(rr.stderr, /--target-dir .*\/l\/restored-here \(really .*\/catalog\/src\/restored-here\) overlaps the catalog/);
  assert.not.ok(existsSync(path.join(ctx.catalog!, SERVER, 'restored-here')));
  assert.equal(await readdir(backups), before, 'backups were deleted');
  const verify = await runPgbk(['verify', SERVER, '--config', ctx.config!]);
  assert.is(verify.code, 0, verify.stdout + verify.stderr);
});

t.run();
