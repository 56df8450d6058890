/**
 * The per-user index of backup records behind `list` and `status` (cli/read-cache.ts, issue 13
 * item 5): settled records are served from it without reading their backup.json; a record
 * replaced, added or removed shows at once; a record written within the racy margin is never
 * indexed; anything unusual (a bad backup.json) takes the ordinary path and is reported the same.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBackupDir, deleteBackup, readBackupsWithProblems, writeBackupRecord } from '../../../src/catalog/backups.js';
import { backupJsonPath, ensureServerDirs } from '../../../src/catalog/layout.js';
import { readBackupsForView } from '../../../src/cli/read-cache.js';
import { readCacheJson, writeCacheJson } from '../../../src/lib/user-cache.js';
import { makeTempDir } from '../catalog/tmp-catalog.js';
import { backup } from '../plan/fixtures.js';

const tmp = makeTempDir('pgbk-backup-index-');
const catalog = path.join(tmp.dir, 'catalog');
const cacheDir = path.join(tmp.dir, 'cache');
test.after(() => tmp.cleanup());

const later = (): number => Date.now() + 60_000; // every file is settled
const now = (): number => Date.now(); // every file just written is racy

function indexFile(): { name: string; data: { entries: Record<string, { record: { keep: string } }> } } | undefined {
  const name = readdirSync(cacheDir).find((n) => n.startsWith('backups-'));
  if (name === undefined) return undefined;
  return { name, data: readCacheJson(cacheDir, name) as { entries: Record<string, { record: { keep: string } }> } };
}

async function add(id: string, keep: 'none' | 'full' = 'none'): Promise<void> {
  await createBackupDir(catalog, 'main', id); // 'exists' for a rewrite of its record
  await writeBackupRecord(catalog, backup(id, { keep }));
}

test('settled records are indexed and served from the index; changes show at once', async () => {
  await ensureServerDirs(catalog, 'main');
  await add('20261120T030000Z');
  await add('20261121T030000Z');
  // Just written: racy, read but not indexed.
  let r = await readBackupsForView(catalog, 'main', { cacheDir, nowMs: now });
  assert.equal(r, await readBackupsWithProblems(catalog, 'main'));
  assert.equal(Object.keys(indexFile()?.data.entries ?? {}), []);
  // Settled: indexed.
  r = await readBackupsForView(catalog, 'main', { cacheDir, nowMs: later });
  assert.equal(r, await readBackupsWithProblems(catalog, 'main'));
  const idx = indexFile()!;
  assert.equal(Object.keys(idx.data.entries).sort(), ['20261120T030000Z', '20261121T030000Z']);
  // Served from the index, backup.json not read: an entry changed behind pgbk's back shows.
  idx.data.entries['20261120T030000Z']!.record.keep = 'standalone';
  writeCacheJson(cacheDir, idx.name, idx.data);
  r = await readBackupsForView(catalog, 'main', { cacheDir, nowMs: later });
  assert.is(r.backups[0]?.keep, 'standalone');
  // A record replaced (rename: new inode, new ctime) is read again, an added one appears, a deleted one goes.
  await add('20261120T030000Z', 'full');
  await add('20261122T030000Z');
  await deleteBackup(catalog, 'main', '20261121T030000Z');
  r = await readBackupsForView(catalog, 'main', { cacheDir, nowMs: later });
  assert.equal(r, await readBackupsWithProblems(catalog, 'main'));
  assert.equal(
    r.backups.map((b) => [b.id, b.keep]),
    [
      ['20261120T030000Z', 'full'],
      ['20261122T030000Z', 'none'],
    ],
  );
  assert.equal(Object.keys(indexFile()!.data.entries).sort(), ['20261120T030000Z', '20261122T030000Z']);
});

test('a bad backup.json is reported as the ordinary read reports it', async () => {
  await add('20261123T030000Z');
  const file = backupJsonPath(catalog, 'main', '20261123T030000Z');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"DONE"', '"DANE"'));
  const r = await readBackupsForView(catalog, 'main', { cacheDir, nowMs: later });
  assert.equal(r, await readBackupsWithProblems(catalog, 'main'));
  assert.equal(
    r.problems.map((p) => p.id),
    ['20261123T030000Z'],
  );
});

test('without a cache directory: the ordinary read', async () => {
  assert.equal(await readBackupsForView(catalog, 'main', {}), await readBackupsWithProblems(catalog, 'main'));
});

test.run();
