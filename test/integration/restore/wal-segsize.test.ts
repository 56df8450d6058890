// test-lane: light — 1 MiB and 64 MiB WAL segments through the fast path; only 60 s archive waits (a slow worker costs the --wait-seconds fallback, never a failure)
/**
 * Clusters initdb'd with a WAL segment size other than 16 MiB (`initdb --wal-segsize`; 64 MiB and
 * more is common on busy servers, 1 MiB is the smallest). Every WAL name pgbk computes — the
 * backup's begin and end segments, the archive's continuity, the recoverable window, the segments a
 * restore replays and the prefetch worker fetches — depends on the size, which pgbk learns from
 * the server. Nothing else in the suite runs another size, so a hidden 16 MiB would show only here:
 * each cluster archives through the command `wal-push --print-archive-command` prints (the worker
 * and its shell fast path), takes a base backup that must reach DONE, writes rows across segment
 * boundaries, and PostgreSQL proves the restores: to a named restore point and to the end.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readBackups } from '../../../src/catalog/backups.js';
import { listArchivedWal, readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { readWalHeader } from '../../../src/pg/wal-header.js';
import { localWorkerKey, runtimeDir } from '../../../src/wal-push/target.js';
import { makeWorld, restoreAndQuery, waitInCatalog, type World } from '../../support/pgbk.js';

const POSTGRES_UID = 101;

/** The local wal-push worker's PIDs, from its log in the postgres user's runtime directory. */
async function workerPids(key: string): Promise<number[]> {
  const dir = runtimeDir().replace(/pgbk-\d+$/, `pgbk-${POSTGRES_UID}`);
  const log = await readFile(path.join(dir, `walpush-${key}.log`), 'utf8').catch(() => '');
  return [...new Set([...log.matchAll(/wal-push-worker\[(\d+)\]/g)].map((m) => Number(m[1])))];
}

function stopIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** Close the current segment and wait until it is in the catalog. */
async function switchAndArchive(w: World): Promise<string> {
  const name = await w.cluster.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
  await w.cluster.sql('SELECT pg_switch_wal()');
  await waitInCatalog(w, name);
  return name;
}

const READ = "SELECT current_setting('wal_segment_size') || ':' || string_agg(step::text, ',' ORDER BY step) FROM t";

for (const mib of [1, 64]) {
  test(`${mib} MiB WAL segments: archived through the worker, backed up to DONE, restored to a restore point and to the end with the exact rows`, async () => {
    const w = await makeWorld({ archive: 'wal-push', serverYaml: 'retention: { redundancy: 2 }', cluster: { initdbArgs: [`--wal-segsize=${mib}`] } });
    const key = localWorkerKey(w.configPath, 'main', w.cluster.pgdata);
    try {
      const c = w.cluster;
      assert.is(await c.sql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"), String(mib * 1024 * 1024));
      const printed = await w.pgbk(['wal-push', '--print-archive-command', '--pgdata', c.pgdata, 'main']);
      assert.is(printed.code, 0, printed.stderr);
      await c.sql(`ALTER SYSTEM SET archive_command = '${printed.stdout.trim().replace(/'/g, "''")}'`);
      await c.sql('SELECT pg_reload_conf()');

      await c.sql('CREATE TABLE t (step int PRIMARY KEY, pad text)');
      await c.sql(`INSERT INTO t VALUES (0, 'before the backup')`);
      await switchAndArchive(w);
      const b = await w.pgbk(['backup', 'main']);
      assert.is(b.code, 0, b.stdout + b.stderr);
      const done = (await readBackups(w.catalog, 'main')).filter((x) => x.status === 'DONE');
      assert.is(done.length, 1, b.stdout + b.stderr);
      const backup = done[0]!;
      // The backup's WAL range is named with this size: the begin segment holds its begin LSN.
      const beginSeg = await c.sql(`SELECT pg_walfile_name('${backup.beginLsn}')`);
      assert.is(backup.beginWal, beginSeg);

      // Rows far enough apart that records cross segment boundaries (with 1 MiB segments, several).
      const fill = mib === 1 ? 12_000 : 2_000;
      await c.sql(`INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(100000, 100000 + ${fill}) g`);
      await c.sql('DELETE FROM t WHERE step >= 100000');
      await c.sql(`INSERT INTO t VALUES (1, 'one')`);
      await c.sql('SELECT pg_switch_wal()');
      await c.sql(`INSERT INTO t VALUES (2, 'two')`);
      await c.sql(`SELECT pg_create_restore_point('after_two')`);
      await c.sql(`INSERT INTO t VALUES (3, 'three')`);
      const last = await switchAndArchive(w);

      // The archive is contiguous from the backup's begin segment on, every segment this cluster's.
      const segs = (await listArchivedWal(w.catalog, 'main')).segments.filter((s) => s >= beginSeg && s <= last);
      const perLogId = 0x100000000 / (mib * 1024 * 1024);
      const index = (s: string): number => parseInt(s.slice(8, 16), 16) * perLogId + parseInt(s.slice(16), 16);
      assert.is(index(last) - index(beginSeg) + 1, segs.length, `gap: ${segs.join(' ')}`);
      const sysid = await c.sql('SELECT system_identifier FROM pg_control_system()');
      for (const s of segs) {
        const data = await readArchivedWal(w.catalog, 'main', s);
        assert.is(data.length, mib * 1024 * 1024, s);
        assert.is(readWalHeader(data)?.systemIdentifier, sysid, s);
      }

      const v = await w.pgbk(['verify', 'main']);
      assert.is(v.code, 0, v.stdout + v.stderr);
      const st = await w.pgbk(['status', 'main', '--json']);
      assert.is(st.code, 0, st.stderr);
      assert.not.match(st.stdout, /"hole"\s*:\s*\{/, st.stdout);

      assert.is(await restoreAndQuery(w.pgbk, 'main', ['--target-name', 'after_two', '--target-action', 'promote'], READ), `${mib}MB:0,1,2`);
      assert.is(await restoreAndQuery(w.pgbk, 'main', [], READ), `${mib}MB:0,1,2,3`);
    } finally {
      for (const pid of await workerPids(key)) stopIfAlive(pid);
      await w.destroy();
    }
  });
}

test.run();
