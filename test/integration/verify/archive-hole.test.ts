// test-lane: light — verify's verdict on a WAL archive with a missing segment; no time bound
/**
 * `pgbk verify SERVER all` is the integrity check of the whole catalog, so a segment lost from the
 * middle of the WAL archive (after the backup's own WAL, before newer archived WAL) must fail it,
 * naming the segment — as `pgbk check`'s "wal continuity" and `pgbk restore` already do. Found in
 * session 17's disaster-recovery walk-through: on a50420a verify read back only the files that are
 * present and printed "Verify: no problems." (exit 0) while check reported the gap and restore
 * refused to replay past it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { archivedSegmentFile, makeWorld, switchWal, type World } from '../../support/pgbk.js';

let world: World;
let missing: string;

test.before(async () => {
  world = await makeWorld();
  const first = await world.pgbk(['apply']);
  assert.is(first.code, 0, first.stdout + first.stderr);
  const closed: string[] = [];
  for (let i = 0; i < 3; i++) closed.push(await switchWal(world));
  const archived = await world.pgbk(['apply']);
  assert.is(archived.code, 0, archived.stdout + archived.stderr);
  missing = closed[1]!;
});

test.after(async () => {
  await world?.destroy();
});

test('a segment missing between the backup and newer archived WAL fails verify all, named', async () => {
  const sound = await world.pgbk(['verify', 'main', 'all', '--quick']);
  assert.is(sound.code, 0, sound.stdout + sound.stderr);

  const file = await archivedSegmentFile(world.catalog, missing);
  assert.ok(file, `${missing} archived`);
  const aside = path.join(world.root, path.basename(file!));
  await rename(file!, aside);
  try {
    const check = await world.pgbk(['check']);
    assert.match(check.stdout, new RegExp(`FAILED wal continuity: .*${missing}`), 'check reports the gap');

    const r = await world.pgbk(['verify', 'main', 'all', '--quick']);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAILED WAL archive: /m, r.stdout);
    assert.ok(r.stdout.includes(missing), r.stdout);
    const j = await world.pgbk(['verify', 'main', 'all', '--quick', '--json']);
    assert.is((JSON.parse(j.stdout) as { ok: boolean }).ok, false, j.stdout);
  } finally {
    await rename(aside, file!);
  }
  const again = await world.pgbk(['verify', 'main', 'all', '--quick']);
  assert.is(again.code, 0, again.stdout + again.stderr);
});

test.run();
