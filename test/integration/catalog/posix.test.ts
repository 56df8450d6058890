// test-lane: light — repository contract on a directory (lock ttl 1 s is only ever refused or taken fresh); no PostgreSQL workload
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { acquireLock } from '../../../src/catalog/lock.js';
import { openPosixRepository } from '../../../src/catalog/posix/driver.js';
import type { Repository } from '../../../src/catalog/repository.js';
import { tempDir } from '../../support/postgres.js';
import { rejects, repositoryContract } from './repository-contract.js';

repositoryContract('posix', async () => {
  const root = await tempDir('pgbk-repo-posix-');
  return {
    repo: await openPosixRepository(root),
    spec: { kind: 'posix', root },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

/** What only the posix driver promises: today's on-disk catalog, byte for byte. */
const t = suite<{ root?: string; repo?: Repository }>('posix driver: on-disk layout', {});
t.before.each(async (ctx) => {
  ctx.root = await tempDir('pgbk-repo-posix-layout-');
  ctx.repo = await openPosixRepository(ctx.root);
});
t.after.each(async (ctx) => {
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});
const get = (ctx: { root?: string; repo?: Repository }): { root: string; repo: Repository } => ({ root: ctx.root!, repo: ctx.repo! });
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

t('keys are paths under the root; files 0640 (or the mode asked), new directories 0750', async (ctx) => {
  const { root, repo } = get(ctx);
  await repo.put('main/backups/20260101T000000Z/backup.json', '{}\n');
  await repo.putIfAbsent('main/server.json', '{"a":1}\n', { mode: 0o644 });
  assert.is(await readFile(path.join(root, 'main/backups/20260101T000000Z/backup.json'), 'utf8'), '{}\n');
  assert.is(await modeOf(path.join(root, 'main/backups/20260101T000000Z/backup.json')), 0o640);
  assert.is(await modeOf(path.join(root, 'main/server.json')), 0o644);
  assert.is(await modeOf(path.join(root, 'main/backups/20260101T000000Z')), 0o750);
  assert.is(repo.where('main/server.json'), path.join(root, 'main/server.json'));
});

t('putIfAbsent with a sha256 appends the SHA256SUMS line (sha256sum -c passes); delete drops it and the emptied directory', async (ctx) => {
  const { root, repo } = get(ctx);
  const dir = 'main/wal/0000000100000000';
  const names = ['000000010000000000000001.zst', '000000010000000000000002.zst'];
  for (const n of names) await repo.putIfAbsent(`${dir}/${n}`, n, { sha256: sha(n) });
  const sums = await readFile(path.join(root, dir, 'SHA256SUMS'), 'utf8');
  assert.is(sums, names.map((n) => `${sha(n)}  ${n}\n`).join(''));
  const check = spawnSync('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: path.join(root, dir), encoding: 'utf8' });
  assert.is(check.status, 0, check.stdout + check.stderr);
  await repo.delete([`${dir}/${names[0]}`], { removeEmptyParents: true });
  assert.is(await readFile(path.join(root, dir, 'SHA256SUMS'), 'utf8'), `${sha(names[1]!)}  ${names[1]}\n`);
  await repo.delete([`${dir}/${names[1]}`], { removeEmptyParents: true });
  await rejects(() => stat(path.join(root, dir)), /ENOENT/);
  assert.ok((await stat(path.join(root, 'main/wal'))).isDirectory(), 'only the emptied directory goes');
});

t('a file published without its SHA256SUMS line (crash) gets it back from the next putIfAbsent of the same bytes', async (ctx) => {
  const { root, repo } = get(ctx);
  const key = 'main/wal/0000000100000000/000000010000000000000003.zst';
  await mkdir(path.join(root, 'main/wal/0000000100000000'), { recursive: true });
  await writeFile(path.join(root, key), 'segment');
  assert.is((await repo.stat(key))?.sha256, undefined);
  assert.is(await repo.putIfAbsent(key, 'other bytes', { sha256: sha('other bytes') }), 'exists');
  assert.is((await repo.stat(key))?.sha256, undefined, 'never records the sum of other bytes');
  assert.is(await repo.putIfAbsent(key, 'segment', { sha256: sha('segment') }), 'exists');
  assert.is((await repo.stat(key))?.sha256, sha('segment'));
});

t('temp files are dot-named beside the key and gone after commit and abort', async (ctx) => {
  const { root, repo } = get(ctx);
  const w = await repo.openWrite('main/backups/20260101T000000Z/base.tar');
  const dir = path.join(root, 'main/backups/20260101T000000Z');
  const during = await readdir(dir);
  assert.is(during.length, 1);
  assert.match(during[0]!, /^\.base\.tar\.tmp-\d+-[0-9a-f]{12}$/);
  await pipeline(Readable.from([Buffer.from('x')]), w.stream);
  await w.commit();
  assert.equal(await readdir(dir), ['base.tar']);
  const a = await repo.openWrite('main/backups/20260101T000000Z/other');
  await a.abort();
  assert.equal(await readdir(dir), ['base.tar']);
});

t('deleteTree renames to .deleting-<name> first and finishes leftovers of an interrupted deletion', async (ctx) => {
  const { root, repo } = get(ctx);
  await repo.put('main/backups/20260101T000000Z/backup.json', '{}');
  await repo.put('main/backups/20260102T000000Z/backup.json', '{}');
  const leftover = path.join(root, 'main/backups/.deleting-20251231T000000Z');
  await mkdir(path.join(leftover, 'data'), { recursive: true });
  await writeFile(path.join(leftover, 'data/x'), 'x');
  await repo.deleteTree('main/backups/20260101T000000Z/');
  assert.equal(await readdir(path.join(root, 'main/backups')), ['20260102T000000Z']);
});

t('the lock file is what catalog/lock.ts writes, and each sees the other holding it', async (ctx) => {
  const { root, repo } = get(ctx);
  await mkdir(path.join(root, 'main'));
  const old = await acquireLock(root, 'main', { command: 'apply', timeoutMs: 0 });
  const oldText = await readFile(path.join(root, 'main/lock'), 'utf8');
  const refused = await repo.tryLock('main/lock', { ...old.info, id: 'other' }, { ttlMs: 1000 });
  assert.equal(refused, { acquired: false, holder: old.info });
  await old.release();
  const mine = await repo.tryLock('main/lock', old.info, { ttlMs: 1000 });
  assert.ok(mine.acquired);
  assert.is(await readFile(path.join(root, 'main/lock'), 'utf8'), oldText);
  assert.is(await modeOf(path.join(root, 'main/lock')), 0o640);
  await rejects(() => acquireLock(root, 'main', { command: 'backup', timeoutMs: 0 }), /locked by pid/);
  if (mine.acquired) await mine.lease.release();
  await rejects(() => stat(path.join(root, 'main/lock')), /ENOENT/);
});

t('a lock file that is not JSON is reported unreadable and never taken over', async (ctx) => {
  const { root, repo } = get(ctx);
  await mkdir(path.join(root, 'main'));
  await writeFile(path.join(root, 'main/lock'), 'garbage');
  const me = { id: 'x', pid: process.pid, host: os.hostname(), command: 'apply', since: new Date().toISOString() };
  assert.equal(await repo.tryLock('main/lock', me, { ttlMs: 1000 }), { acquired: false, holder: 'unreadable' });
  assert.is(await repo.readLock('main/lock'), 'unreadable');
  assert.is(await readFile(path.join(root, 'main/lock'), 'utf8'), 'garbage');
});

t('opening a root that is missing or a file fails naming it', async () => {
  await rejects(() => openPosixRepository('/nonexistent/pgbk-catalog'), /cannot open the catalog \/nonexistent\/pgbk-catalog/);
});

t.run();
