/**
 * The read views' WAL index (catalog/wal-overview.ts) never shows stale data: it always agrees
 * with a full listing of the archive, after segments are added and removed too.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureServerDirs, walRoot } from '../../../src/catalog/layout.js';
import { listArchivedWal } from '../../../src/catalog/wal-archive.js';
import { RACY_MARGIN_MS, readWalOverview } from '../../../src/catalog/wal-overview.js';
import { overviewOf } from '../../../src/model/wal-runs.js';
import { segmentNameFrom, walDirName } from '../../../src/pg/wal-name.js';
import { makeTempDir } from './tmp-catalog.js';

const SEG = 16 * 1024 * 1024;
const tmp = makeTempDir('pgbk-wal-overview-');
const catalog = path.join(tmp.dir, 'catalog');
const cacheDir = path.join(tmp.dir, 'cache');
test.after(() => tmp.cleanup());

/** The listing happens "later" than the directories' last change: they may be indexed. */
const later = { cacheDir, nowMs: () => Date.now() + 10 * RACY_MARGIN_MS };

function segPath(segno: number, tli = 1): string {
  const name = segmentNameFrom(tli, segno, SEG);
  return path.join(walRoot(catalog, 'main'), walDirName(name), `${name}.zst`);
}

function addSegments(from: number, to: number, tli = 1): void {
  for (let s = from; s <= to; s++) {
    mkdirSync(path.dirname(segPath(s, tli)), { recursive: true });
    writeFileSync(segPath(s, tli), '');
  }
}

async function assertAgrees(what: string): Promise<void> {
  const full = overviewOf(await listArchivedWal(catalog, 'main'));
  const fast = await readWalOverview(catalog, 'main', later);
  assert.equal(fast, full, what);
}

function indexFile(): string {
  const names = readdirSync(cacheDir).filter((n) => n.startsWith('wal-'));
  assert.is(names.length, 1);
  return path.join(cacheDir, names[0]!);
}

test('agrees with the full listing; an unchanged directory is taken from the index', async () => {
  await ensureServerDirs(catalog, 'main');
  assert.equal(await readWalOverview(catalog, 'main', later), { runs: [], count: 0 });
  addSegments(0x1f0, 0x210); // across a log directory boundary
  addSegments(0x300, 0x305);
  writeFileSync(path.join(path.dirname(segPath(0x300)), '.000000010000000000000306.zst.tmp-1-ab'), ''); // in flight
  await assertAgrees('first listing');
  const index = JSON.parse(readFileSync(indexFile(), 'utf8')) as { dirs: Record<string, { runs: { prefix: string; seg: number; count: number }[] }> };
  assert.equal(Object.keys(index.dirs).sort(), ['0000000100000001', '0000000100000002', '0000000100000003']);
  // Proof that the index is what answers: doctor an entry while its directory stays unchanged.
  index.dirs['0000000100000003']!.runs = [{ prefix: '0000000100000003', seg: 0, count: 1 }];
  writeFileSync(indexFile(), JSON.stringify(index), { mode: 0o600 });
  const doctored = await readWalOverview(catalog, 'main', later);
  assert.is(doctored.count, 16 + 17 + 1); // 0x1f0…0x1ff, 0x200…0x210, then the doctored one
});

test('a segment added or removed changes its directory: listed again, agrees again', async () => {
  addSegments(0x306, 0x306); // the doctored directory changes: its entry is replaced
  await assertAgrees('after adding a segment');
  unlinkSync(segPath(0x1f5));
  await assertAgrees('after removing a segment (a gap)');
  rmSync(path.dirname(segPath(0x300)), { recursive: true });
  await assertAgrees('after removing a whole log directory');
  addSegments(0x10, 0x12, 2);
  await assertAgrees('after a new timeline');
});

test('a directory changed just before its listing is not indexed (racy), but still listed', async () => {
  rmSync(cacheDir, { recursive: true, force: true });
  addSegments(0x400, 0x402);
  const now = await readWalOverview(catalog, 'main', { cacheDir });
  assert.equal(now, overviewOf(await listArchivedWal(catalog, 'main')));
  const index = JSON.parse(readFileSync(indexFile(), 'utf8')) as { dirs: Record<string, unknown> };
  assert.not.ok('0000000100000004' in index.dirs, 'just written: could change again within the same clock tick');
});

test('an index file another user could write is ignored', async () => {
  const index = JSON.parse(readFileSync(indexFile(), 'utf8')) as { dirs: Record<string, { runs: unknown[] }> };
  for (const d of Object.values(index.dirs)) d.runs = [];
  writeFileSync(indexFile(), JSON.stringify(index), { mode: 0o666 });
  const { chmodSync } = await import('node:fs');
  chmodSync(indexFile(), 0o666);
  await assertAgrees('world-writable index ignored');
});

test.run();
