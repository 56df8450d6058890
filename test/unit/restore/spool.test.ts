import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultSpoolDir, pruneSpool, putInSpool, takeFromSpool } from '../../../src/restore/spool.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-spool-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const NAME = '000000010000000000000005';

test('defaultSpoolDir: beside pg_wal in the data directory', () => {
  assert.is(defaultSpoolDir('pg_wal/RECOVERYXLOG', '/data/pg'), '/data/pg/.pgbk-spool');
});

test('spool: a verified file is handed over by rename, then gone from the spool', async () => {
  await withDir(async (dir) => {
    const spool = path.join(dir, 'spool');
    await mkdir(spool);
    const data = Buffer.alloc(1 << 20, 7);
    await putInSpool(spool, 'main', NAME, data);
    const dest = path.join(dir, 'RECOVERYXLOG');
    assert.is(await takeFromSpool(spool, 'main', NAME, dest), 'taken');
    assert.ok((await readFile(dest)).equals(data));
    assert.equal(await readdir(spool), []);
    assert.is(await takeFromSpool(spool, 'main', NAME, dest), 'absent');
  });
});

test('spool: a damaged, truncated or foreign spooled file is never handed over', async () => {
  await withDir(async (dir) => {
    const spool = path.join(dir, 'spool');
    await mkdir(spool);
    const dest = path.join(dir, 'RECOVERYXLOG');
    const data = Buffer.alloc(4096, 1);

    await putInSpool(spool, 'main', NAME, data);
    const flipped = Buffer.from(data);
    flipped[10] = 2;
    await writeFile(path.join(spool, NAME), flipped);
    assert.is(await takeFromSpool(spool, 'main', NAME, dest), 'discarded');

    await putInSpool(spool, 'main', NAME, data);
    await writeFile(path.join(spool, NAME), data.subarray(0, 100));
    assert.is(await takeFromSpool(spool, 'main', NAME, dest), 'discarded');

    await putInSpool(spool, 'other', NAME, data);
    assert.is(await takeFromSpool(spool, 'main', NAME, dest), 'discarded');

    // data without its sidecar = still being written
    await writeFile(path.join(spool, NAME), data);
    assert.is(await takeFromSpool(spool, 'main', NAME, dest), 'absent');
    await assert.not.ok(await readFile(dest).then(() => true, () => false), 'nothing written to DEST');
  });
});

test('pruneSpool: segments PostgreSQL has passed go, later ones stay', async () => {
  await withDir(async (spool) => {
    for (const n of ['000000010000000000000003', '000000010000000000000004', '000000010000000000000006']) {
      await putInSpool(spool, 'main', n, Buffer.from('x'));
    }
    await pruneSpool(spool, '000000020000000000000005');
    assert.equal((await readdir(spool)).sort(), ['000000010000000000000006', '000000010000000000000006.json']);
  });
});

test.run();
