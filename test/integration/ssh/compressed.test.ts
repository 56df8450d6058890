// test-lane: light — compressed ssh backups; its 2.5 s sleep is a lower bound (files age), no upper bound
/**
 * `ssh` backups with backup.compression zstd (issue 13): every stored object is a zstd frame the
 * agent made on the database host (files.json formatVersion 3). An uncompressed backup of the
 * format before (files.json v2) still verifies and restores beside them, and the first compressed
 * backup after it builds on it (unchanged files imported locally); a later incremental links
 * unchanged chunks and skips hashing those whose pages all predate the previous start; restores
 * start with the exact rows; a damaged compressed chunk is caught by verify and restore.
 */
import { stat, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type BackupRecord, type CopiedBackup, isCopied } from '../../../src/model/types.js';
import { tempDir } from '../../support/postgres.js';
import { makeSshWorld, restoreByCopy, switchAndArchive, waitPromoted, type SshWorld } from './world.js';

const t = suite<{ w?: SshWorld; ids: string[] }>('ssh backup method, compressed chunks', { ids: [] });
t.before(async (ctx) => {
  ctx.w = await makeSshWorld();
});
t.after(async (ctx) => {
  await ctx.w?.destroy();
});

async function show(w: SshWorld, id = 'latest'): Promise<BackupRecord> {
  const r = await w.pgbk(['show', 'main', id, '--json']);
  assert.is(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { backup: BackupRecord }).backup;
}

async function backup(w: SshWorld): Promise<{ rec: CopiedBackup; log: string }> {
  const r = await w.pgbk(['backup', 'main']);
  assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.not.match(r.stderr, /falling back to a tar stream/);
  const rec = await show(w);
  if (!isCopied(rec)) throw new Error(`backup ${rec.id} is ${rec.status}, not copied`);
  return { rec, log: r.stderr };
}

async function manifestHead(w: SshWorld, id: string): Promise<{ formatVersion: number; compression?: string }> {
  return JSON.parse(await readFile(path.join(w.catalog, 'main', 'backups', id, 'files.json'), 'utf8')) as { formatVersion: number; compression?: string };
}

const chunkFile = (w: SshWorld, id: string, rel: string, index: number): string =>
  path.join(w.catalog, 'main', 'backups', id, 'data', `${rel}.pgbk-chunks`, index.toString(16).padStart(8, '0'));

t('uncompressed (v2) then compressed backups: both verify and restore with exact rows; incremental links and skips by page LSN', async (ctx) => {
  const w = ctx.w!;
  await w.cluster.sql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
  await w.cluster.sql("CREATE TABLE wide AS SELECT g, repeat('w', 500) AS pad FROM generate_series(1, 13000) g");
  await w.cluster.sql('VACUUM FREEZE wide');
  await w.cluster.sql('CHECKPOINT');
  const wideRel = await w.cluster.sql("SELECT pg_relation_filepath('wide')");
  await new Promise((r) => setTimeout(r, 2500)); // files age past the reuse margin

  // The format before compression: what backup.compression none still writes.
  const old = (await backup(w)).rec;
  assert.is((await manifestHead(w, old.id)).formatVersion, 2);
  assert.is(old.compression, 'none');

  await w.writeConfig({ backupCompression: 'zstd' });
  await w.cluster.sql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(5001, 6000) g');
  const first = (await backup(w)).rec;
  assert.equal(await manifestHead(w, first.id), { ...(await manifestHead(w, first.id)), formatVersion: 3, compression: 'zstd' });
  assert.is(first.compression, 'zstd');
  assert.is(first.reusedBytes, 0, 'nothing hard-linked across formats');
  assert.ok((first.sizes?.stored ?? 0) * 4 < (first.copiedBytes ?? 0), `stored ${first.sizes?.stored} of ${first.copiedBytes} bytes: not compressed`);
  const raw = await readFile(chunkFile(w, first.id, wideRel, 3));
  assert.is(raw.readUInt32LE(0), 0xfd2fb528, 'a chunk is a zstd frame');
  assert.ok(raw.length < (1024 * 1024) / 4);

  await w.cluster.sql("UPDATE wide SET pad = repeat('u', 500) WHERE g <= 200; CHECKPOINT");
  const incr = await backup(w);
  assert.is(incr.rec.reusedFrom, first.id);
  assert.is((await stat(chunkFile(w, incr.rec.id, wideRel, 3))).ino, (await stat(chunkFile(w, first.id, wideRel, 3))).ino);
  assert.is.not((await stat(chunkFile(w, incr.rec.id, wideRel, 0))).ino, (await stat(chunkFile(w, first.id, wideRel, 0))).ino);
  // wide's later chunks were not even read (the WAL since the first's start does not touch them)
  // or not hashed (their pages predate it).
  const unread = Number(/\((\d+) chunks unread: the WAL since/.exec(incr.log)?.[1] ?? '0');
  const skipped = Number(/\((\d+) chunks by page LSN, unhashed\)/.exec(incr.log)?.[1] ?? '0');
  assert.ok(unread + skipped >= 5, incr.log);
  assert.ok((incr.rec.copiedBytes ?? 0) * 4 < (first.copiedBytes ?? 0), `incremental copied ${incr.rec.copiedBytes}`);

  for (const id of [old.id, first.id, incr.rec.id]) {
    const v = await w.pgbk(['verify', 'main', id]);
    assert.is(v.code, 0, `${id}: ${v.stdout}\n${v.stderr}`);
  }
  await w.cluster.sql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(6001, 6500) g');
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);
  ctx.ids.push(incr.rec.id);

  for (const [id, rows, updated] of [
    [incr.rec.id, '6500', '200/13000'],
    [old.id, '6500', '200/13000'],
  ] as const) {
    const restored = await restoreByCopy(w, id);
    try {
      await waitPromoted(restored);
      assert.is(await restored.sql('SELECT count(*) FROM t'), rows, id);
      assert.is(await restored.sql('SELECT count(*) FROM t WHERE v <> md5(id::text)'), '0', id);
      assert.is(await restored.sql("SELECT count(*) FILTER (WHERE pad = repeat('u', 500)) || '/' || count(*) FROM wide"), updated, id);
    } finally {
      await restored.destroy();
    }
  }
});

t('a damaged compressed chunk: verify and restore name it', async (ctx) => {
  const w = ctx.w!;
  const id = ctx.ids[0]!;
  const wideRel = await w.cluster.sql("SELECT pg_relation_filepath('wide')");
  const chunk = chunkFile(w, id, wideRel, 2);
  const original = await readFile(chunk);
  const damaged = Buffer.from(original);
  const at = Math.floor(damaged.length / 2);
  damaged[at] = damaged[at]! ^ 0x5a;
  await writeFile(chunk, damaged);
  try {
    const bad = await w.pgbk(['verify', 'main', id]);
    assert.is(bad.code, 1, bad.stdout);
    assert.match(`${bad.stdout}${bad.stderr}`, /00000002 does not match its recorded sha256/);
    const target = path.join(await tempDir('pgbk-sshbad-'), 'data');
    const r = await w.pgbk(['restore', 'main', id, '--target-dir', target]);
    assert.is(r.code, 1, r.stdout);
    assert.match(r.stderr, /00000002 does not match its recorded sha256/);
    await rm(path.dirname(target), { recursive: true, force: true });
  } finally {
    await writeFile(chunk, original); // hard-linked into other backups: put it back
  }
});

t.run();
