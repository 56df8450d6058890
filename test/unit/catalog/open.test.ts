import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups, writeBackupRecord } from '../../../src/catalog/backups.js';
import { readIdentity, recordIdentity } from '../../../src/catalog/identity.js';
import { locate, openRepository, osErrorOf, repositoryKindOf, repositoryOf } from '../../../src/catalog/open.js';
import { PgbkError } from '../../../src/errors.js';
import type { BackupRecord } from '../../../src/model/types.js';
import { makeTempDir, rejection } from './tmp-catalog.js';

const tmp = makeTempDir('pgbk-open-');
test.after(() => tmp.cleanup());

test('the repository kind: a URL scheme names a store, anything else is a local directory', () => {
  assert.is(repositoryKindOf('/var/lib/pgbk'), 'posix');
  assert.is(repositoryKindOf('/srv/odd:name//x'), 'posix');
  assert.is(repositoryKindOf('s3://bucket/prefix'), 's3');
  assert.is(repositoryKindOf('FTP://host/x'), 'ftp');
});

test('openRepository refuses a kind it has no driver for, naming the catalog and the kind', async () => {
  const err = await rejection(openRepository('ftp://host/backups'));
  assert.instance(err, PgbkError);
  assert.is((err as PgbkError).code, 'CONFIG');
  assert.is((err as PgbkError).message, 'catalog ftp://host/backups: unknown repository kind "ftp"');
  assert.is((err as PgbkError).path, 'ftp://host/backups');
  assert.match((err as PgbkError).hint ?? '', 'local directory');
  const viaRef = await rejection(repositoryOf('gopher://x/y'));
  assert.match((viaRef as Error).message, 'unknown repository kind "gopher"');
});

test('a local directory opens the posix driver; the configured catalog is opened once per process', async () => {
  const dir = path.join(tmp.dir, 'once');
  mkdirSync(dir);
  const repo = await openRepository(dir);
  await repo.put('main/x', 'y');
  assert.is(readFileSync(path.join(dir, 'main', 'x'), 'utf8'), 'y');
  const a = await repositoryOf(dir);
  assert.is(await repositoryOf(dir), a);
  assert.is(await repositoryOf(a), a, 'an opened Repository is used as is');
});

test('a catalog directory that does not exist yet reads as empty, refuses writes, and opens once it exists', async () => {
  const dir = path.join(tmp.dir, 'later');
  const early = await repositoryOf(dir);
  assert.is(await early.get('main/server.json'), undefined);
  assert.is(await readIdentity(dir, 'main'), undefined);
  assert.equal(await readBackups(dir, 'main'), []);
  const err = await rejection(early.put('main/x', 'y'));
  assert.match((err as Error).message, `cannot open the catalog ${dir}`);
  assert.is(osErrorOf(err)?.code, 'ENOENT');
  mkdirSync(dir);
  const repo = await repositoryOf(dir);
  assert.is.not(repo, early);
  await repo.put('main/x', 'y');
  assert.is((await repo.get('main/x'))?.toString(), 'y');
});

test('catalog functions take an opened Repository as well as the configured catalog, and say where things are', async () => {
  const dir = path.join(tmp.dir, 'both');
  mkdirSync(dir);
  const repo = await openRepository(dir);
  const identity = { systemIdentifier: '7000000000000000001', pgVersion: 150000, walSegmentSize: 16 * 1024 * 1024, firstContact: '2026-01-01T00:00:00.000Z' };
  await recordIdentity(repo, 'main', identity);
  assert.equal(await readIdentity(dir, 'main'), identity);
  const record = {
    formatVersion: 1,
    id: '20260101T000000Z',
    server: 'main',
    slot: 'pgbk_main',
    status: 'FAILED',
    method: 'basebackup',
    beginTime: '2026-01-01T00:00:00.000Z',
    compression: 'zstd',
    keep: 'none',
    error: 'pg_basebackup exited with 1',
    pgVersion: 150000,
    systemIdentifier: '7000000000000000001',
  } as unknown as BackupRecord;
  await writeBackupRecord(dir, record);
  assert.equal(await readBackups(repo, 'main'), [record]);
  assert.is(locate(dir, 'main/backups/'), path.join(dir, 'main', 'backups'));
  assert.is(locate(repo, 'main/backups/'), repo.where('main/backups'));
  assert.is(locate(repo, 'main/server.json'), path.join(dir, 'main', 'server.json'));
});

test('osErrorOf: the OS error under a driver error, or the error itself, or nothing', () => {
  const os = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  assert.is(osErrorOf(new PgbkError('CATALOG', 'cannot write x', { cause: os })), os);
  assert.is(osErrorOf(os), os);
  assert.is(osErrorOf(new PgbkError('CATALOG', 'no cause')), undefined);
  assert.is(osErrorOf(new Error('plain')), undefined);
});

test.run();
