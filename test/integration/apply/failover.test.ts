// test-lane: light — failover to a promoted standby; only 60 s waits
/**
 * A failover, as an HA setup does it: a primary and its streaming standby archive into the same
 * catalog through `pgbk wal-push` (the standby's archive_command is the primary's, idle until it is
 * promoted). The primary is stopped, the standby promoted (timeline 2: it archives
 * 00000002.history and the old timeline's last segment as .partial) and pgbk's connection moved to
 * it. The catalog must read across the switch — no false WAL hole in `status`, `verify` clean, the
 * next backup on timeline 2 DONE — and the backup from before the failover must restore past it:
 * PostgreSQL follows the history file to timeline 2 and holds every row.
 */
import { writeFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../src/catalog/backups.js';
import { listArchivedWal } from '../../../src/catalog/wal-archive.js';
import { type PrimaryWithStandby, primaryWithStandby, restoreAndQuery, type World } from '../../support/pgbk.js';
import { waitForQuery } from '../../support/postgres.js';

let pair: PrimaryWithStandby | undefined;

test.after(async () => {
  await pair?.destroy();
});

async function waitFor(what: string, ok: () => Promise<boolean>, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (await ok()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within 60 s\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ROWS = "SELECT string_agg(step::text, ',' ORDER BY step) FROM t";

const doneIds = async (w: World): Promise<string[]> => (await readBackups(w.catalog, 'main')).filter((b) => b.status === 'DONE').map((b) => b.id);

test('after a failover to the standby the catalog reads across the timeline switch, backs up timeline 2 and restores the old backup past the switch', async () => {
  pair = await primaryWithStandby();
  const { world: w, standby } = pair;
  const primary = w.cluster;

  const before = await w.pgbk(['backup', 'main']);
  assert.is(before.code, 0, before.stdout + before.stderr);
  const [oldBackup] = await doneIds(w);
  assert.ok(oldBackup !== undefined, before.stdout + before.stderr);

  // Rows on timeline 1, replayed by the standby; then the primary goes away.
  await primary.sql('INSERT INTO t VALUES (1)');
  await primary.sql('SELECT pg_switch_wal()');
  await primary.sql('INSERT INTO t VALUES (2)');
  await waitForQuery(standby.cluster, 'SELECT count(*) FROM t', '3');
  const s = standby.cluster;
  await waitFor(
    'the primary archiving its finished segments',
    async () => (await primary.sql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")) === '0',
    () => primary.logTail(20),
  );
  await primary.stop('fast');

  // The standby is promoted: timeline 2, archived through the same catalog.
  assert.is(await s.sql('SELECT pg_promote()'), 't');
  await waitForQuery(s, 'SELECT pg_is_in_recovery()', 'f');
  await s.sql('INSERT INTO t VALUES (3)');
  const tl2Segment = await s.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
  assert.match(tl2Segment, /^00000002/);
  await s.sql('SELECT pg_switch_wal()');
  await waitFor(
    `${tl2Segment} and 00000002.history in the catalog`,
    async () => {
      const wal = await listArchivedWal(w.catalog, 'main');
      return wal.segments.includes(tl2Segment) && wal.histories.includes('00000002.history');
    },
    () => s.logTail(20),
  );

  // pgbk now talks to the new primary.
  await writeFile(w.configPath, `catalog: ${w.catalog}\nservers:\n  main:\n    connection: "${s.conninfo}"\n    retention: { redundancy: 2 }\n`);
  const status = await w.pgbk(['status', 'main', '--json']);
  assert.is(status.code, 0, status.stderr);
  assert.not.match(status.stdout, /"hole"\s*:\s*\{/, `a false WAL hole at the timeline switch:\n${status.stdout}`);
  const v = await w.pgbk(['verify', 'main']);
  assert.is(v.code, 0, v.stdout + v.stderr);

  const after = await w.pgbk(['backup', 'main']);
  assert.is(after.code, 0, after.stdout + after.stderr);
  const done = await doneIds(w);
  assert.is(done.length, 2, after.stdout + after.stderr);
  const newBackup = (await readBackups(w.catalog, 'main')).find((b) => b.id === done[1]);
  assert.is(newBackup !== undefined && 'timeline' in newBackup ? newBackup.timeline : undefined, 2);

  // The old backup replays timeline 1, follows 00000002.history and ends with every row.
  assert.is(await restoreAndQuery(w.pgbk, 'main', [oldBackup], ROWS), '0,1,2,3');
  assert.is(await restoreAndQuery(w.pgbk, 'main', [], ROWS), '0,1,2,3');

  // Retention across the switch: with redundancy 1 the old backup goes and the WAL before the new
  // one is pruned — timeline 1's segments and .partial among it — but nothing the new one needs.
  await writeFile(w.configPath, `catalog: ${w.catalog}\nservers:\n  main:\n    connection: "${s.conninfo}"\n    retention: { redundancy: 1 }\n`);
  const walBefore = await listArchivedWal(w.catalog, 'main');
  const apply = await w.pgbk(['apply']);
  assert.is(apply.code, 0, apply.stdout + apply.stderr);
  assert.match(apply.stdout, new RegExp(`delete-backup ${oldBackup}`), apply.stdout);
  assert.equal(await doneIds(w), [done[1]]);
  const walAfter = await listArchivedWal(w.catalog, 'main');
  const newBegin = newBackup !== undefined && 'beginWal' in newBackup ? newBackup.beginWal : '';
  assert.ok(
    walBefore.segments.some((x) => x.startsWith('00000001')),
    'timeline 1 was archived',
  );
  assert.equal(
    walAfter.segments,
    walBefore.segments.filter((x) => x.slice(8) >= newBegin.slice(8) && x.startsWith('00000002')),
    `after pruning:\n${apply.stdout}`,
  );
  assert.ok(walAfter.histories.includes('00000002.history'), 'the history file is kept');
  const again = await w.pgbk(['plan']);
  assert.match(again.stdout, /No changes/, again.stdout);
  assert.is((await w.pgbk(['verify', 'main'])).code, 0);
  assert.is(await restoreAndQuery(w.pgbk, 'main', [], ROWS), '0,1,2,3');
});

test.run();
