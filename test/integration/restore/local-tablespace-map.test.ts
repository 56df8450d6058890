// test-lane: light — one restore with a tablespace map; only 60-90 s waits
/**
 * What a local `pgbk restore` leaves on disk for a backup with a tablespace — as it did before
 * restore became one implementation over a Transport (issue 11: no on-disk change): the
 * tablespace unpacked into `<target-dir>_tablespaces/<oid>`, pg_tblspc/<oid> a symbolic link to
 * it, and no tablespace_map (the backup's map names the source's directory; `restore --remote`
 * rewrites it instead, tested in remote/remote.test.ts). PostgreSQL, started on the result, reads
 * the tablespace's rows from the restored copy and leaves no tablespace_map.old behind (it had no
 * map to act on), while the source's tablespace is untouched.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listArchivedWal } from '../../../src/catalog/wal-archive.js';
import { CLI, runPgbk } from '../../support/pgbk.js';
import { chownToPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../../support/postgres.js';

const SERVER = 'src';

test('local restore with a tablespace: pg_tblspc link to <target>_tablespaces/<oid>, no tablespace_map; PostgreSQL reads its rows', async () => {
  const root = await tempDir('pgbk-lts-');
  const catalog = path.join(root, 'catalog');
  const config = path.join(root, 'pgbk.yaml');
  const tsDir = path.join(root, 'source-ts');
  let source: TestCluster | undefined;
  let restored: TestCluster | undefined;
  try {
    await mkdir(catalog);
    await mkdir(tsDir);
    await chownToPostgres(catalog);
    await chownToPostgres(tsDir);
    source = await startCluster({ archiveCommand: `${process.execPath} ${CLI} wal-push --config ${config} ${SERVER} %p` });
    await writeFile(
      config,
      [`catalog: ${catalog}`, 'servers:', `  ${SERVER}:`, `    connection: "${source.conninfo}"`, '    retention: { redundancy: 2 }', ''].join('\n'),
    );
    await chmod(config, 0o644);
    await source.sql(`CREATE TABLESPACE ts LOCATION '${tsDir}'`);
    const oid = await source.sql(`SELECT oid FROM pg_tablespace WHERE spcname = 'ts'`);
    await source.sql('CREATE TABLE tt (x int) TABLESPACE ts');
    await source.sql('INSERT INTO tt SELECT generate_series(1, 1000)');
    const b = await runPgbk(['backup', SERVER, '--config', config]);
    assert.is(b.code, 0, `pgbk backup: ${b.stderr}`);
    // The backup's last segment must be archived before the restore can reach consistency.
    const last = await source.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
    await source.sql('SELECT pg_switch_wal()');
    const deadline = Date.now() + 60_000;
    while (!(await listArchivedWal(catalog, SERVER)).segments.includes(last)) {
      if (Date.now() > deadline) throw new Error(`${last} was not archived\n${source.logTail(20)}`);
      await sleep(100);
    }
    const sourceTs = await readdir(tsDir);

    const dir = path.join(root, 'restored');
    const r = await runPgbk(['restore', SERVER, '--config', config, '--target-dir', dir, '--no-archive']);
    assert.is(r.code, 0, `pgbk restore: ${r.stderr}`);
    const tsCopy = path.join(`${dir}_tablespaces`, oid);
    assert.not.ok(existsSync(path.join(dir, 'tablespace_map')), 'a local restore leaves no tablespace_map');
    assert.is(await readlink(path.join(dir, 'pg_tblspc', oid)), tsCopy);
    assert.ok(
      (await readdir(tsCopy)).some((n) => n.startsWith('PG_15_')),
      'the tablespace was unpacked into its copy',
    );

    restored = await startClusterOn(dir, { conf: { archive_mode: 'off' } });
    await waitForQuery(restored, 'SELECT pg_is_in_recovery()', 'f', 90_000);
    assert.is(await restored.sql('SELECT count(*) FROM tt'), '1000', restored.logTail(20));
    assert.is(await realpath(await restored.sql(`SELECT pg_tablespace_location(${oid})`)), await realpath(tsCopy));
    assert.not.ok(existsSync(path.join(dir, 'tablespace_map.old')), 'PostgreSQL found no tablespace_map to act on');
    assert.is(await readlink(path.join(dir, 'pg_tblspc', oid)), tsCopy, 'the link still points at the restored copy');
    assert.equal(await readdir(tsDir), sourceTs, "the source's tablespace is untouched");
  } finally {
    await restored?.destroy();
    await source?.destroy();
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
