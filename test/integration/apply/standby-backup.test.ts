/**
 * A base backup taken from a streaming standby (the usual way to spare a busy primary), with the
 * primary archiving into the catalog through `pgbk wal-push`. A standby cannot switch WAL segments,
 * so the segment holding the backup's end is archived only when the primary finishes it: the
 * backup must not be DONE before that (its WAL would be incomplete), must become DONE once it is,
 * and must restore — PostgreSQL replays from the standby's backup_label to the exact rows.
 */
import { writeFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../src/catalog/backups.js';
import { listArchivedWal } from '../../../src/catalog/wal-archive.js';
import { type PrimaryWithStandby, primaryWithStandby, restoreAndQuery, waitInCatalog } from '../../support/pgbk.js';
import { waitForQuery } from '../../support/postgres.js';

let pair: PrimaryWithStandby | undefined;

test.after(async () => {
  await pair?.destroy();
});

test('a backup from a standby waits for the primary to archive its end segment, then is DONE and restores the exact rows', async () => {
  pair = await primaryWithStandby();
  const { world: w } = pair;
  const primary = w.cluster;
  const s = pair.standby.cluster;
  // A row in the primary's current segment, replayed by the standby before its backup: the
  // backup then ends in a segment the primary has not finished (nor archived).
  await primary.sql('INSERT INTO t VALUES (1)');
  await waitForQuery(s, 'SELECT count(*) FROM t', '2');

  // pgbk backs up the standby; the primary keeps archiving into the same catalog.
  await writeFile(w.configPath, `catalog: ${w.catalog}\nservers:\n  main:\n    connection: "${s.conninfo}"\n    retention: { redundancy: 2 }\n`);
  const b = await w.pgbk(['backup', 'main']);
  assert.is(b.code, 0, b.stdout + b.stderr);
  const [backup] = await readBackups(w.catalog, 'main');
  assert.ok(backup !== undefined);
  assert.is(backup.status, 'WAITING_FOR_WAL', `${backup.status}: the end segment cannot be archived yet\n${b.stdout}${b.stderr}`);
  const endWal = 'endWal' in backup ? backup.endWal : undefined;
  if (endWal === undefined) throw new Error('a WAITING_FOR_WAL backup without endWal');
  assert.not.ok((await listArchivedWal(w.catalog, 'main')).segments.includes(endWal), 'end segment archived already');
  // The user is told what it waits for and what ends the wait.
  assert.match(
    b.stdout + b.stderr,
    new RegExp(`backup ${backup.id} is WAITING_FOR_WAL \\(still waiting for 1 segment, first ${endWal}\\); taken from a standby`),
  );

  // A row after the backup, then the primary finishes the segment and archives it.
  await primary.sql('INSERT INTO t VALUES (2)');
  await primary.sql('SELECT pg_switch_wal()');
  await waitInCatalog(w, endWal);
  const a = await w.pgbk(['apply']);
  assert.is(a.code, 0, a.stdout + a.stderr);
  const after = (await readBackups(w.catalog, 'main')).find((x) => x.id === backup.id);
  assert.is(after?.status, 'DONE', a.stdout + a.stderr);

  // check on the standby passes and says where its WAL comes from.
  const chk = await w.pgbk(['check', 'main']);
  assert.is(chk.code, 0, chk.stdout + chk.stderr);
  assert.match(chk.stdout, /archiving: none on this standby \(archive_mode on\): the primary archives the WAL/);
  const v = await w.pgbk(['verify', 'main']);
  assert.is(v.code, 0, v.stdout + v.stderr);

  // The restore: to the end of the archive (row 2 is in the archived segment).
  assert.is(await restoreAndQuery(w.pgbk, 'main', [], "SELECT string_agg(step::text, ',' ORDER BY step) FROM t"), '0,1,2');
});

test.run();
