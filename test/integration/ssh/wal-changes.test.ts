// test-lane: light — ssh incrementals that leave chunks unread by the WAL; its 2.5 s sleep is a lower bound (files age), no upper bound
/**
 * An incremental `ssh` backup leaves unread the chunks of changed relation files that the WAL since
 * the previous backup's start never touched (backup/ssh/wal-changes.ts, pg/wal-blocks.ts):
 *
 * - pgbk's block summary of real WAL equals pg_waldump's block references (main forks), over
 *   updates, a VACUUM that truncates a table, a TRUNCATE, CREATE/DROP TABLE and CREATE DATABASE;
 * - the incremental taken after that work leaves chunks unread, verifies, and a restore of it holds
 *   exactly the source's rows (a chunk wrongly left unread would keep the old rows: replay from the
 *   incremental's start does not rewrite a block changed before it);
 * - with a segment of that WAL missing from the archive, the incremental says why and reads the
 *   changed files whole, and is as exact.
 */
import { execFile } from 'node:child_process';
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { archivedWalFile } from '../../../src/catalog/wal-archive.js';
import { type CopiedBackup, isCopied, type BackupRecord } from '../../../src/model/types.js';
import { WalBlockSummary } from '../../../src/pg/wal-blocks.js';
import { WalRecordReader } from '../../../src/pg/wal-records.js';
import { parseLsn } from '../../../src/pg/lsn.js';
import { segmentNameFrom } from '../../../src/pg/wal-name.js';
import { PG_BINDIR } from '../../support/postgres.js';
import { makeSshWorld, restoreByCopy, switchAndArchive, waitPromoted, type SshWorld } from './world.js';

const pexec = promisify(execFile);

const t = suite<{ w?: SshWorld }>('ssh incremental: chunks left unread by the WAL', {});
t.before(async (ctx) => {
  // pg_wal keeps the WAL compared with pg_waldump across CREATE DATABASE's checkpoints.
  ctx.w = await makeSshWorld({ cluster: { conf: { wal_keep_size: '512MB' } } });
  await ctx.w.writeConfig({ backupCompression: 'zstd' });
});
t.after(async (ctx) => {
  await ctx.w?.destroy();
});

async function backup(w: SshWorld): Promise<{ rec: CopiedBackup; log: string }> {
  const r = await w.pgbk(['backup', 'main']);
  assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const s = await w.pgbk(['show', 'main', 'latest', '--json']);
  const rec = (JSON.parse(s.stdout) as { backup: BackupRecord }).backup;
  if (!isCopied(rec)) throw new Error(`backup ${rec.id} is ${rec.status}`);
  return { rec, log: r.stderr };
}

const unreadOf = (log: string): number => Number(/\((\d+) chunks unread: the WAL since/.exec(log)?.[1] ?? '0');

/** Every table's rows, as one digest per table: what a restore must hold exactly. */
const DIGEST_SQL =
  "SELECT string_agg(n || ':' || d, ' ' ORDER BY n) FROM (SELECT 'big' AS n, md5(string_agg(id || '/' || v, ',' ORDER BY id)) AS d FROM big UNION ALL SELECT 'keep', md5(string_agg(id::text, ',' ORDER BY id)) FROM keep UNION ALL SELECT 'fresh', md5(string_agg(id::text, ',' ORDER BY id)) FROM fresh) x";

/** Main-fork block references of [from, to) in pg_wal, by pg_waldump: "spc/db/rel:block". */
async function waldumpBlocks(pgdata: string, from: string, to: string): Promise<Set<string>> {
  const { stdout } = await pexec(path.join(PG_BINDIR, 'pg_waldump'), ['-p', path.join(pgdata, 'pg_wal'), '-s', from, '-e', to], { maxBuffer: 1 << 28 });
  const out = new Set<string>();
  for (const line of stdout.split('\n')) {
    for (const m of line.matchAll(/blkref #\d+: rel (\d+)\/(\d+)\/(\d+)(?: fork (\w+))? blk (\d+)/g)) {
      if (m[4] === undefined || m[4] === 'main') out.add(`${m[1]}/${m[2]}/${m[3]}:${m[5]}`);
    }
  }
  return out;
}

/** The same range read by pgbk's reader and summary from pg_wal's files (CRC checked). */
async function summaryOf(pgdata: string, from: string, to: string, segSize: number): Promise<WalBlockSummary> {
  const start = Number(parseLsn(from));
  const end = Number(parseLsn(to));
  const summary = new WalBlockSummary();
  const reader = new WalRecordReader({
    segSize,
    startLsn: start,
    wants: () => true,
    raw: (buf, off, totLen, lsn, rmid, info) => {
      if (lsn < end) summary.addRaw(buf, off, totLen, lsn, rmid, info);
    },
  });
  for (let segno = Math.floor(start / segSize); segno * segSize < end; segno++) {
    const r = reader.feed(segno, await readFile(path.join(pgdata, 'pg_wal', segmentNameFrom(1, segno, segSize))), () => undefined);
    // The current segment ends where the WAL written so far ends: after `to`.
    assert.ok(!r.ended || r.at >= end, JSON.stringify(r));
  }
  assert.is(summary.unusable, undefined);
  return summary;
}

t('the summary of real WAL equals pg_waldump; the incremental after it leaves chunks unread and restores exactly', async (ctx) => {
  const w = ctx.w!;
  const c = w.cluster;
  await c.sql(
    'CREATE TABLE big (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off); INSERT INTO big SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 120000) g',
  );
  await c.sql('CREATE TABLE keep (id int) WITH (autovacuum_enabled = off); INSERT INTO keep SELECT generate_series(1, 50000)');
  await c.sql('CREATE TABLE gone (id int); INSERT INTO gone SELECT generate_series(1, 1000)');
  await c.sql('CREATE TABLE fresh (id int)');
  for (const q of ['VACUUM FREEZE big', 'VACUUM FREEZE keep', 'CHECKPOINT']) await c.sql(q);
  await new Promise((r) => setTimeout(r, 2500)); // files age past the reuse margin
  const full = await backup(w);
  assert.is(unreadOf(full.log), 0);

  const segSize = Number(
    await c.sql(
      "SELECT setting::bigint * 1024 * 1024 FROM pg_settings WHERE name = 'wal_segment_size' AND unit = 'MB' UNION ALL SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size' AND unit = 'B'",
    ),
  );
  const from = (await c.sql('SELECT pg_current_wal_insert_lsn()')).trim();
  // A slice of big updated (in place of the old rows: new versions at its end), its tail deleted
  // and cut off by VACUUM, then rows inserted again where the cut was; keep truncated (a new file)
  // and refilled; a table dropped, one created, a database copied.
  await c.sql("UPDATE big SET v = 'changed ' || id WHERE id BETWEEN 30001 AND 30400");
  await c.sql('DELETE FROM big WHERE id > 110000');
  await c.sql('VACUUM big');
  await c.sql("INSERT INTO big SELECT g, 'again ' || g FROM generate_series(110001, 112000) g");
  await c.sql('TRUNCATE keep; INSERT INTO keep SELECT generate_series(1, 300)');
  await c.sql('DROP TABLE gone');
  await c.sql('INSERT INTO fresh SELECT generate_series(1, 777)');
  await c.sql('CREATE DATABASE copied STRATEGY file_copy');
  const to = (await c.sql('SELECT pg_current_wal_insert_lsn()')).trim();

  // pgbk's summary of [from, to) against pg_waldump's block references.
  const dumped = await waldumpBlocks(c.pgdata, from, to);
  const summary = await summaryOf(c.pgdata, from, to, segSize);
  assert.ok(dumped.size > 50, `${dumped.size} blocks`);
  const byRel = new Map<string, number[]>();
  for (const b of dumped) {
    const [rel, blk] = b.split(':') as [string, string];
    byRel.set(rel, [...(byRel.get(rel) ?? []), Number(blk)]);
  }
  for (const [rel, blocks] of byRel) {
    const [spc, db, relNumber] = rel.split('/').map(Number) as [number, number, number];
    const got = summary.changes(spc, db, relNumber);
    assert.is(got.kind, 'blocks', rel);
    if (got.kind !== 'blocks') continue;
    for (const b of blocks) assert.ok(got.blocks.has(b) || (got.limit !== undefined && b >= got.limit), `${rel} block ${b}`);
    const extra = [...got.blocks].filter((b) => !blocks.includes(b));
    assert.equal(extra, [], `${rel}: blocks pg_waldump does not list`);
  }
  // big was cut short by VACUUM (a limit at its new end); keep's new file and the copied database are new.
  const bigRel = (await c.sql("SELECT pg_relation_filenode('big')")).trim();
  const dbOid = (await c.sql('SELECT oid FROM pg_database WHERE datname = current_database()')).trim();
  const bigChanges = summary.changes(1663, Number(dbOid), Number(bigRel));
  assert.ok(
    bigChanges.kind === 'blocks' && bigChanges.limit !== undefined && bigChanges.limit > 0,
    JSON.stringify(bigChanges.kind === 'blocks' ? bigChanges.limit : bigChanges),
  );
  const keepRel = (await c.sql("SELECT pg_relation_filenode('keep')")).trim();
  const keepChanges = summary.changes(1663, Number(dbOid), Number(keepRel));
  assert.ok(keepChanges.kind === 'blocks' && keepChanges.limit === 0);
  const copiedOid = (await c.sql("SELECT oid FROM pg_database WHERE datname = 'copied'")).trim();
  const copiedChanges = summary.changes(1663, Number(copiedOid), 1259);
  assert.ok(copiedChanges.kind === 'blocks' && copiedChanges.limit === 0);

  await c.sql('CHECKPOINT');
  const incr = await backup(w);
  assert.is(incr.rec.reusedFrom, full.rec.id);
  assert.ok(unreadOf(incr.log) >= 5, incr.log);
  assert.not.match(incr.log, /read whole/);
  const v = await w.pgbk(['verify', 'main', incr.rec.id]);
  assert.is(v.code, 0, `${v.stdout}\n${v.stderr}`);

  const source = await c.sql(DIGEST_SQL);
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);
  const restored = await restoreByCopy(w, incr.rec.id);
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql(DIGEST_SQL), source);
    assert.is(await restored.sql('SELECT count(*) FROM big'), '112000');
    assert.is(await restored.sql("SELECT count(*) FROM big WHERE v LIKE 'changed %'"), '400');
  } finally {
    await restored.destroy();
  }
});

t('a segment of that WAL missing from the archive: the incremental says so, reads the changed files whole, restores exactly', async (ctx) => {
  const w = ctx.w!;
  const c = w.cluster;
  const prev = (await backup(w)).rec;
  await c.sql("UPDATE big SET v = 'again changed ' || id WHERE id BETWEEN 50001 AND 50300");
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);
  const hidden = await archivedWalFile(w.catalog, 'main', prev.beginWal);
  assert.ok(hidden !== undefined, `${prev.beginWal} archived`);
  await rename(hidden!, `${hidden}.hidden`);
  let incr: { rec: CopiedBackup; log: string };
  try {
    incr = await backup(w);
  } finally {
    await rename(`${hidden}.hidden`, hidden!);
  }
  assert.match(incr.log, new RegExp(`changed relation files read whole: WAL segment ${prev.beginWal} is not in the archive`));
  assert.is(unreadOf(incr.log), 0);
  const source = await c.sql(DIGEST_SQL);
  await switchAndArchive(w);
  assert.is((await w.pgbk(['apply'])).code, 0);
  const restored = await restoreByCopy(w, incr.rec.id);
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql(DIGEST_SQL), source);
  } finally {
    await restored.destroy();
  }
});

t.run();
