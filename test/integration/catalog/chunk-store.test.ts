/**
 * Content-addressed chunks on a real Ceph radosgw (catalog/chunk-store.ts) and their retention
 * (plan/chunk-sweep.ts decides, apply/sweep-chunks.ts executes): put-if-absent never rewrites a
 * chunk, a damaged or swapped chunk is refused naming its key, and the sweep removes only chunks
 * no retained backup refers to — keeping shared ones, ones written since a backup in progress
 * began, and everything when a DONE backup's file list cannot be read.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { executeSweepChunks } from '../../../src/apply/sweep-chunks.js';
import { formatManifest } from '../../../src/backup/ssh/incremental.js';
import { writeBackupRecord } from '../../../src/catalog/backups.js';
import { ChunkStore, chunkKey } from '../../../src/catalog/chunk-store.js';
import { catalogKeys } from '../../../src/catalog/layout.js';
import { registerS3Catalog, repositoryOf } from '../../../src/catalog/open.js';
import type { Repository } from '../../../src/catalog/repository.js';
import { zstdCodec } from '../../../src/catalog/zstd.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';
import { PgbkError } from '../../../src/errors.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import { backup, config } from '../../unit/plan/fixtures.js';
import { rgw } from '../../support/rgw.js';

type Ctx = { cfg?: S3RepositoryConfig; repo?: Repository };
const t = suite<Ctx>('chunk store and chunk sweep on radosgw', {});
const SERVER = 'main';

t.before(async (ctx) => {
  const gw = await rgw();
  ctx.cfg = await gw.bucket('pgbk/');
  registerS3Catalog(ctx.cfg);
  ctx.repo = await repositoryOf(ctx.cfg.url);
});

/** A compressible 256 KiB chunk (a page pattern with some random bytes). */
function chunkBytes(): Buffer {
  const b = Buffer.alloc(256 * 1024, 7);
  randomBytes(4096).copy(b, 0);
  return b;
}

async function refuses(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${String(re)}`);
}

t('put-if-absent by hash: stored once, compressed; a second put stores nothing; read back checked; a damaged or swapped chunk refused', async (ctx) => {
  const store = new ChunkStore(ctx.repo!, SERVER);
  const raw = chunkBytes();
  const hash = sha256Hex(raw);
  const first = await store.put(raw);
  assert.is(first.outcome, 'created');
  assert.ok(first.storedBytes > 0 && first.storedBytes < raw.length / 10, `stored ${first.storedBytes} of ${raw.length}`);
  const again = await store.put(raw);
  assert.equal(again, { outcome: 'exists', storedBytes: 0 });
  assert.ok((await store.get(hash)).equals(raw));
  assert.ok(await store.has(hash));
  const listed = [];
  for await (const c of store.list()) listed.push(c.hash);
  assert.ok(listed.includes(hash));

  const other = chunkBytes();
  const swapped = sha256Hex(other);
  await store.put(other);
  // Overwrite the chunk behind the store's back with another chunk's frame, then with garbage.
  await ctx.repo!.put(chunkKey(SERVER, swapped), (await zstdCodec()).compress(raw, 3));
  await refuses(() => store.get(swapped), new RegExp(`${swapped}\\.zst does not match its sha256`));
  await ctx.repo!.put(chunkKey(SERVER, swapped), Buffer.from('not a zstd frame'));
  await refuses(() => store.get(swapped), new RegExp(`${swapped}\\.zst is damaged`));
  await refuses(() => store.get('0'.repeat(64)), /is missing/);
  await store.delete([hash, swapped]);
});

async function putFileList(repo: Repository, id: string, hashes: string[]): Promise<void> {
  const text = formatManifest({
    listedAtMs: Date.now(),
    pgdata: '/pgdata',
    tablespaces: [],
    chunkSize: 256 * 1024,
    compression: 'zstd',
    files: [{ path: 'data/base/1/1259', size: hashes.length * 256 * 1024, mtimeMs: Date.now(), mode: 0o600, hashes }],
  });
  await repo.put(`${catalogKeys.backup(SERVER, id)}files.json`, text);
}

t(
  'sweep: unshared chunks of a backup that left go; shared, in-progress and recent ones stay; an unreadable file list of a DONE backup stops it',
  async (ctx) => {
    const repo = ctx.repo!;
    const store = new ChunkStore(repo, SERVER);
    const [a, b, c, d] = [chunkBytes(), chunkBytes(), chunkBytes(), chunkBytes()];
    const [ha, hb, hc, hd] = [a, b, c, d].map((x) => sha256Hex(x)) as [string, string, string, string];
    // Backup 1 (a, b) has left the catalog (its record is gone); backup 2 (b, c) is DONE.
    for (const x of [a, b, c]) await store.put(x);
    await writeBackupRecord(ctx.cfg!.url, { ...backup('20261201T030000Z', { method: 'ssh' }), server: SERVER });
    await putFileList(repo, '20261201T030000Z', [hb, hc]);
    // radosgw's mtimes have second resolution: the backup in progress begins clearly after a, b, c
    // and clearly before d (which it wrote, not yet in any file list).
    await sleep(1100);
    const inProgressBegin = new Date();
    await sleep(1100);
    await store.put(d);
    await writeBackupRecord(ctx.cfg!.url, {
      ...backup('20261202T030000Z', { method: 'ssh', status: 'STARTED', beginTime: inProgressBegin.toISOString() }),
      server: SERVER,
    });
    await sleep(1100);

    const exec = {
      catalog: ctx.cfg!.url,
      server: config({ name: SERVER }),
      now: new Date(),
      log: () => undefined,
      identity: undefined,
    };
    const action = { kind: 'sweep-chunks' as const, server: SERVER, subject: 'chunks', reason: 'test' };

    // A DONE backup without a readable file list: nothing may be proven unreferenced.
    await writeBackupRecord(ctx.cfg!.url, { ...backup('20261130T030000Z', { method: 'ssh' }), server: SERVER });
    const held = await executeSweepChunks(exec, action, 0);
    assert.is(held.outcome, 'skipped');
    assert.match(held.detail, /20261130T030000Z cannot be read: no chunk is removed/);
    for (const h of [ha, hb, hc, hd]) assert.ok(await store.has(h), `${h} kept while a file list is unreadable`);
    await repo.deleteTree(catalogKeys.backup(SERVER, '20261130T030000Z'));

    const r = await executeSweepChunks(exec, action, 0);
    assert.is(r.outcome, 'done', r.detail);
    assert.is(r.detail, '1 chunk deleted, 2 referenced and 1 recent kept');
    assert.not.ok(await store.has(ha), 'a: only the expired backup referred to it');
    assert.ok(await store.has(hb), 'b: shared with the retained backup');
    assert.ok(await store.has(hc), 'c: the retained backup refers to it');
    assert.ok(await store.has(hd), 'd: written by the backup in progress');
  },
);

t.run();
