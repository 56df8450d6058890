import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFindListing, selectForBackup, type ListedEntry } from '../../../../src/backup/ssh/listing.js';
import { psqlErrorText } from '../../../../src/backup/ssh/psql-session.js';
import { labelStartLsn, labelTimeline } from '../../../../src/backup/ssh/session.js';

function f(rel: string, type: ListedEntry['type'] = 'file'): ListedEntry {
  return { rel, type, size: 8192, mtimeMs: 1, mode: 0o600, uid: 26, gid: 26 };
}

test('find output is parsed (NUL records, symlink targets, fractional mtimes)', () => {
  const out = Buffer.from(
    'f\t8192\t1700000000.1234567890\t600\t26\t27\t\tbase/1/1259\0l\t20\t1700000001.5\t777\t26\t27\t/srv/ts1\tpg_tblspc/16385\0d\t4096\t1700000002.0\t700\t26\t27\t\tbase\0',
  );
  const e = parseFindListing(out);
  assert.equal(
    e.map((x) => x.rel),
    ['base', 'base/1/1259', 'pg_tblspc/16385'],
  );
  assert.is(e[1]?.mtimeMs, 1700000000123);
  assert.is(e[1]?.mode, 0o600);
  assert.is(e[1]?.uid, 26);
  assert.is(e[1]?.gid, 27);
  assert.is(e[2]?.target, '/srv/ts1');
});

test('pg_basebackup exclusions for the data directory', () => {
  const all = [
    f('PG_VERSION'),
    f('postmaster.pid'),
    f('postmaster.opts'),
    f('backup_label'),
    f('tablespace_map'),
    f('current_logfiles'),
    f('postgresql.auto.conf'),
    f('postgresql.auto.conf.tmp'),
    f('pg_wal', 'dir'),
    f('pg_wal/000000010000000000000001'),
    f('pg_wal/archive_status', 'dir'),
    f('pg_wal/archive_status/x.ready'),
    f('pg_replslot', 'dir'),
    f('pg_replslot/s1', 'dir'),
    f('pg_replslot/s1/state'),
    f('pg_stat_tmp', 'dir'),
    f('pg_stat_tmp/db.stat'),
    f('pg_subtrans/0000'),
    f('pg_notify/0000'),
    f('pg_dynshmem/x'),
    f('pg_serial/0'),
    f('pg_snapshots/x'),
    f('base/1/pg_internal.init'),
    f('base/pgsql_tmp', 'dir'),
    f('base/pgsql_tmp/pgsql_tmp123.0'),
    f('base/1/pgsql_tmp5'),
    f('base/1/1259'),
    f('base/1/1259_fsm'),
    f('base/1/16400'),
    f('base/1/16400.1'),
    f('base/1/16400_fsm'),
    f('base/1/16400_init'),
    f('pg_tblspc', 'dir'),
    f('pg_tblspc/16385', 'symlink'),
    f('global/pg_control'),
    f('pg_xact/0000'),
  ];
  const kept = selectForBackup(all, true).map((e) => e.rel);
  assert.equal(kept, [
    'PG_VERSION',
    'postgresql.auto.conf',
    'pg_wal',
    'pg_wal/archive_status',
    'pg_replslot',
    'pg_stat_tmp',
    'base/1/1259',
    'base/1/1259_fsm',
    'base/1/16400_init',
    'pg_tblspc',
    'global/pg_control',
    'pg_xact/0000',
  ]);
});

test('tablespace roots keep everything but temp files and unlogged main forks', () => {
  const kept = selectForBackup([f('PG_15_1/5/16390'), f('PG_15_1/5/16391'), f('PG_15_1/5/16391_init'), f('PG_15_1/pgsql_tmp/x')], false).map((e) => e.rel);
  assert.equal(kept, ['PG_15_1/5/16390', 'PG_15_1/5/16391_init']);
});

test('backup_label fields and psql error extraction', () => {
  const label = 'START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\nCHECKPOINT LOCATION: 0/9000060\nSTART TIMELINE: 3\n';
  assert.is(labelTimeline(label), 3);
  assert.is(labelStartLsn(label), '0/9000028');
  assert.is(
    psqlErrorText('psql:<stdin>:1: ERROR:  permission denied for function pg_backup_start\n'),
    'psql:<stdin>:1: ERROR:  permission denied for function pg_backup_start',
  );
});

test.run();
