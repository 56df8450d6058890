// test-lane: light — remote restore of a gained tablespace; only a 60 s recovery wait
/**
 * What `restore --remote` gained by being the local restore run over an SshTransport (issue 11):
 * pg_verifybackup on the database host refuses restored files that do not match backup_manifest
 * even when every stored file matches its recorded sha256 (nothing is left behind, nothing is
 * started), and --force over a non-empty target behaves as it does locally (refused without it,
 * contents deleted with it, never a running server's directory), after which the copy starts and
 * holds the rows.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../../src/catalog/backups.js';
import { makeWorld, sha256OfFile, switchWal, type World } from '../../../support/pgbk.js';
import { chownToPostgres, startClusterOn, tempDir, waitForQuery } from '../../../support/postgres.js';
import { startSshd, type TestSshd } from '../../../support/sshd.js';

interface Ctx {
  w?: World;
  sshd?: TestSshd;
  backupId?: string;
  dests: string[];
}

const t = suite<Ctx>('restore --remote: pg_verifybackup and --force, as a local restore has them', { dests: [] });

function remote(ctx: Ctx, args: readonly string[]): ReturnType<World['pgbk']> {
  return ctx.w!.pgbk([
    'restore',
    'main',
    '--remote',
    `postgres@127.0.0.1:${ctx.sshd!.port}`,
    '--identity',
    ctx.sshd!.identityFile,
    '--known-hosts',
    ctx.sshd!.knownHosts,
    ...args,
  ]);
}

async function newDest(ctx: Ctx): Promise<string> {
  const dest = await tempDir('pgbk-rgain-');
  await chownToPostgres(dest);
  ctx.dests.push(dest);
  return dest;
}

t.before(async (ctx) => {
  ctx.sshd = await startSshd();
  const w = await makeWorld();
  ctx.w = w;
  await w.cluster.sql('CREATE TABLE t (n int); INSERT INTO t VALUES (1)');
  await switchWal(w);
  // The first apply takes the server's first backup (there is none yet): the one restored below.
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);
  await w.cluster.sql('INSERT INTO t VALUES (2)');
  await switchWal(w);
  const done = await w.pgbk(['apply']);
  assert.is(done.code, 0, done.stderr);
  const backups = (await readBackups(w.catalog, 'main')).filter((x) => x.status === 'DONE');
  assert.is(backups.length, 1);
  ctx.backupId = backups[0]!.id;
});

t.after(async (ctx) => {
  for (const d of ctx.dests) await rm(d, { recursive: true, force: true });
  await ctx.w?.destroy();
  await ctx.sshd?.stop();
});

t('pg_verifybackup on the database host refuses files backup_manifest does not list; sha256 alone passes them', async (ctx) => {
  const w = ctx.w!;
  const dir = path.join(w.catalog, 'main', 'backups', ctx.backupId!);
  const tarZst = path.join(dir, 'base.tar.zst');
  const recordFile = path.join(dir, 'backup.json');
  const [tarBefore, recordBefore] = await Promise.all([readFile(tarZst), readFile(recordFile, 'utf8')]);
  const work = await tempDir('pgbk-rgain-tamper-');
  try {
    // A stored base.tar with one file more than the server wrote, its sha256 recorded as if it
    // had always been so: only the comparison with backup_manifest can tell.
    const plain = path.join(work, 'base.tar');
    execFileSync('zstd', ['-d', '-q', '-o', plain, tarZst]);
    await writeFile(path.join(work, 'stray_file'), 'not from the server\n');
    execFileSync('tar', ['-rf', plain, '-C', work, 'stray_file']);
    execFileSync('zstd', ['-q', '-f', '-o', tarZst, plain]);
    const record = JSON.parse(recordBefore) as { checksums: Record<string, string> };
    record.checksums['base.tar.zst'] = await sha256OfFile(tarZst);
    await writeFile(recordFile, JSON.stringify(record, null, 2));

    const dest = await newDest(ctx);
    const data = path.join(dest, 'data');
    const r = await remote(ctx, ['--target-dir', data]);
    assert.is(r.code, 1, `restore --remote accepted files the manifest does not list:\n${r.stderr}`);
    assert.match(r.stderr, /the restored files do not match the backup manifest \(pg_verifybackup\)/);
    assert.match(r.stderr, /"stray_file" is present on disk but not in the manifest/);
    assert.not.match(r.stderr, /does not match its recorded sha256/);
    // Emptied again, and nothing that could be started is left.
    assert.equal(await readdir(data), [], 'the target directory was not emptied');
  } finally {
    await writeFile(tarZst, tarBefore);
    await writeFile(recordFile, recordBefore);
    await rm(work, { recursive: true, force: true });
  }
});

t('--force over a non-empty remote target: refused without it, emptied with it, never a running server; the copy starts', async (ctx) => {
  const dest = await newDest(ctx);
  const data = path.join(dest, 'data');
  await mkdir(path.join(data, 'old-dir'), { recursive: true });
  await writeFile(path.join(data, 'old-file'), 'x');
  await chownToPostgres(dest);

  const refused = await remote(ctx, ['--target-dir', data]);
  assert.is(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /--target-dir ssh postgres@\[127\.0\.0\.1\]:\d+:.*\/data exists and is not an empty directory \(2 entries\)/, refused.stderr);
  assert.match(refused.stderr, /add --force to DELETE its contents first/, refused.stderr);
  assert.equal((await readdir(data)).sort(), ['old-dir', 'old-file']);

  // A directory a live process claims as its postmaster.pid: refused even with --force.
  await writeFile(path.join(data, 'postmaster.pid'), `${process.pid}\n${data}\n`);
  await chownToPostgres(dest);
  const running = await remote(ctx, ['--target-dir', data, '--force']);
  assert.is(running.code, 1, running.stderr);
  assert.match(running.stderr, /belongs to a running PostgreSQL \(pid \d+\); stop it first/, running.stderr);
  assert.ok(existsSync(path.join(data, 'old-file')), 'deleted although refused');
  await rm(path.join(data, 'postmaster.pid'));

  const forced = await remote(ctx, ['--target-dir', data, '--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /--force: deleting the 2 existing entries of ssh postgres@\[127\.0\.0\.1\]:\d+:.*\/data/, forced.stderr);
  assert.match(forced.stdout, /checked: every file against backup_manifest \(pg_verifybackup on the database host\)/, forced.stdout);
  assert.not.ok(existsSync(path.join(data, 'old-file')));
  assert.not.ok(existsSync(path.join(data, 'old-dir')));
  assert.ok(existsSync(path.join(data, 'PG_VERSION')));
  const c = await startClusterOn(data, { conf: { archive_mode: 'off' } });
  try {
    await waitForQuery(c, 'SELECT pg_is_in_recovery()', 'f', 60_000);
    assert.is(await c.sql("SELECT string_agg(n::text, ',' ORDER BY n) FROM t"), '1,2', c.logTail(30));
  } finally {
    await c.destroy();
  }
});

t.run();
