// test-lane: light — check output; the --wal-timeout runs expect FAILED anyway, the passing arrival uses the default timeout
/**
 * `pgbk check` against real PostgreSQL 15: a healthy setup passes; each broken setting fails the
 * right check with a hint (archive_command missing, archiving failing, wal_level minimal, WAL of
 * another cluster in incoming/ and then in errors/, connection pointing at another cluster).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, runPgbk, type World } from '../../support/pgbk.js';
import { startCluster, waitForQuery, type TestCluster } from '../../support/postgres.js';

let world: World;
let other: TestCluster;
/** archive_command is `pgbk --config CFG wal-push main %p` (the catalog belongs to postgres). */
let pushWorld: World;

interface CheckJson {
  formatVersion: string;
  command: string;
  ok: boolean;
  servers: { server: string; checks: { name: string; ok: boolean; detail: string; hint?: string }[] }[];
}

async function check(): Promise<{ code: number | null; text: string; json: CheckJson }> {
  const text = await world.pgbk(['check']);
  const json = await world.pgbk(['check', '--json']);
  const parsed = JSON.parse(json.stdout) as CheckJson;
  // The JSON envelope every command shares (README "JSON output").
  assert.is(parsed.formatVersion, '1.0');
  assert.is(parsed.command, 'check');
  return { code: text.code, text: text.stdout + text.stderr, json: parsed };
}

function failedNames(j: CheckJson): string[] {
  return j.servers.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => c.name));
}

async function setArchiveCommand(cmd: string, w: World = world): Promise<void> {
  await w.cluster.sql(`ALTER SYSTEM SET archive_command = '${cmd.replace(/'/g, "''")}'`);
  await w.cluster.sql('SELECT pg_reload_conf()');
  await waitForQuery(w.cluster, 'SHOW archive_command', cmd);
}

test.before(async () => {
  world = await makeWorld({ serverYaml: 'backup: { schedule: "0 3 * * *" }\nretention: { redundancy: 2 }\nwal: { maxLag: 1h }' });
  // wal_level=minimal is only allowed without WAL senders and archiving.
  other = await startCluster({ conf: { wal_level: 'minimal', max_wal_senders: '0' } });
  pushWorld = await makeWorld({ serverYaml: 'retention: { redundancy: 1 }', archive: 'wal-push' });
  await world.cluster.sql('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g');
  const apply = await world.pgbk(['apply']);
  assert.is(apply.code, 0, apply.stdout + apply.stderr);
});

test.after(async () => {
  await world?.destroy();
  await other?.destroy();
  await pushWorld?.destroy();
});

test('a healthy setup passes every check, exit 0', async () => {
  const r = await check();
  assert.is(r.code, 0, r.text);
  assert.ok(r.json.ok);
  const names = r.json.servers[0]!.checks.map((c) => c.name);
  for (const n of [
    'configuration',
    'postgresql',
    'privileges',
    'wal_level',
    'archive_mode',
    'archive_command',
    'archiving',
    'wal arrival',
    'system identifier',
    'pg_basebackup',
    'catalog',
    'wal lag',
    'backup age',
    'redundancy',
    'wal continuity',
    'errors/',
  ]) {
    assert.ok(names.includes(n), `check ${n} ran: ${names.join(', ')}`);
  }
  assert.match(r.text, /^ {2}OK archive_mode: on$/m);
  // cp into incoming/: the switched segment is proven to arrive there (apply archives it later).
  assert.match(r.text, /^ {2}OK wal arrival: segment [0-9A-F]{24} \(pg_switch_wal\) (arrived in incoming\/|is archived)/m, r.text);
  assert.match(r.text, /All checks passed\./);
});

test('archive_command missing fails with a hint naming wal-push', async () => {
  const saved = await world.cluster.sql('SHOW archive_command');
  await setArchiveCommand('');
  try {
    const r = await check();
    assert.is(r.code, 1, r.text);
    assert.equal(failedNames(r.json), ['archive_command']);
    assert.match(r.text, /FAILED archive_command: archive_command is empty/);
    assert.match(r.text, /hint: set archive_command = 'pgbk wal-push main %p'/);
  } finally {
    await setArchiveCommand(saved);
  }
});

test('archiving failing (archive_command = false) fails the archiving check', async () => {
  const saved = await world.cluster.sql('SHOW archive_command');
  await setArchiveCommand('false');
  try {
    await world.cluster.sql('INSERT INTO t SELECT g FROM generate_series(1, 1000) g');
    await world.cluster.sql('SELECT pg_switch_wal()');
    await waitForQuery(world.cluster, 'SELECT failed_count > 0 FROM pg_stat_archiver', 't', 30_000);
    const r = await check();
    assert.is(r.code, 1, r.text);
    assert.ok(failedNames(r.json).includes('archiving'), r.text);
    assert.match(r.text, /FAILED archiving: archive_command is failing: \d+ failure/);
    // The cause is the command itself, named above: not the generic causes of a failing command.
    assert.match(r.text, /FAILED archive_command: archive_command is 'false'/);
    assert.match(r.text, /hint: archive_command refuses every segment \(see archive_command above\)/);
  } finally {
    await setArchiveCommand(saved);
  }
  // PostgreSQL retries the same segment; once it succeeds the failure is history.
  await waitForQuery(world.cluster, 'SELECT last_archived_time > last_failed_time FROM pg_stat_archiver', 't', 60_000);
  const after = await check();
  assert.ok(!failedNames(after.json).includes('archiving'), after.text);
  assert.match(after.text, /OK archiving: .*earlier failures?, recovered/, after.text);
});

test('wal_level minimal (no archiving, no WAL senders) fails wal_level, archive_mode and privileges', async () => {
  const dir = path.dirname(world.configPath);
  const cfg = path.join(dir, 'minimal.yaml');
  await writeFile(
    cfg,
    `catalog: ${path.join(dir, 'catalog-minimal')}\nservers:\n  m:\n    connection: "${other.conninfo}"\n    retention: { redundancy: 1 }\n`,
  );
  const r = await runPgbk(['--config', cfg, 'check', 'm']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED wal_level: wal_level is minimal/, r.stdout + r.stderr);
  assert.match(r.stdout, /hint: set wal_level = replica in postgresql.conf and restart PostgreSQL/);
  assert.match(r.stdout, /FAILED archive_mode: archive_mode is off/);
  assert.match(r.stdout, /FAILED privileges: a replication connection is refused/);
});

test('connection pointing at another cluster fails the system identifier check', async () => {
  const dir = path.dirname(world.configPath);
  const cfg = path.join(dir, 'wrong.yaml');
  await writeFile(cfg, `catalog: ${world.catalog}\nservers:\n  main:\n    connection: "${other.conninfo}"\n    retention: { redundancy: 1 }\n`);
  const r = await runPgbk(['--config', cfg, 'check', 'main']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED system identifier: the server is cluster \d+, the catalog belongs to cluster \d+/, r.stdout + r.stderr);
  assert.match(r.stdout, /hint: the server was re-initialised/);
});

test('WAL from another cluster: first in incoming/, then quarantined in errors/', async () => {
  const foreign = path.join(other.pgdata, 'pg_wal', '000000010000000000000001');
  // Same name as a segment of ours: only the system identifier in its header tells them apart.
  const target = path.join(world.incoming, '000000010000000000000001');
  await copyFile(foreign, target);
  const r1 = await check();
  assert.is(r1.code, 1, r1.text);
  assert.ok(failedNames(r1.json).includes('incoming WAL identity'), r1.text);
  assert.match(r1.text, /FAILED incoming WAL identity: incoming\/ holds WAL of another cluster: 000000010000000000000001 \(cluster \d+\)/);

  const apply = await world.pgbk(['apply']);
  assert.match(
    apply.stdout + apply.stderr,
    /quarantined incoming\/000000010000000000000001: WAL belongs to cluster \d+, this catalog holds cluster \d+/,
    apply.stdout + apply.stderr,
  );
  const r2 = await check();
  assert.is(r2.code, 1, r2.text);
  assert.equal(failedNames(r2.json), ['errors/']);
  assert.match(r2.text, /FAILED errors\/: 1 quarantined file .*000000010000000000000001\.\d{8}T\d{6}Z \(WAL belongs to cluster/);
  assert.match(r2.text, /hint: read each \.reason/);
});

test('archive_command `pgbk wal-push main %p` of this configuration: named as correct, its segment proven archived', async () => {
  const r = await pushWorld.pgbk(['check']);
  // No backup yet in this world: only the backup age and redundancy checks may fail.
  assert.equal(
    [...r.stdout.matchAll(/FAILED ([^:]+):/g)].map((m) => m[1]),
    ['backup age', 'redundancy'],
    r.stdout,
  );
  assert.match(r.stdout, /^ {2}OK archive_command: .*wal-push' 'main' %p \(server main, this catalog\)$/m, r.stdout);
  assert.match(r.stdout, /^ {2}OK wal arrival: segment [0-9A-F]{24} \(pg_switch_wal\) is archived in this catalog/m, r.stdout);
});

test('archive_command naming another server or another catalog is reported with the name it found', async () => {
  const saved = await pushWorld.cluster.sql('SHOW archive_command');
  const dir = path.dirname(pushWorld.configPath);
  // A second configuration whose catalog is elsewhere (what a command copied from another setup does).
  const otherCfg = path.join(dir, 'elsewhere.yaml');
  await writeFile(otherCfg, `catalog: ${path.join(dir, 'elsewhere-catalog')}\nservers:\n  main:\n    retention: { redundancy: 1 }\n`);
  await chmod(otherCfg, 0o644);
  try {
    await setArchiveCommand(saved.replace("'main' %p", "'other' %p"), pushWorld);
    const r1 = await pushWorld.pgbk(['check', '--wal-timeout', '2s']);
    assert.is(r1.code, 1, r1.stdout + r1.stderr);
    assert.match(r1.stdout, /FAILED archive_command: archive_command pushes WAL to server "other", not "main"/, r1.stdout);
    assert.match(r1.stdout, /hint: set archive_command = 'pgbk wal-push main %p'/);

    await setArchiveCommand(saved.replace(pushWorld.configPath, otherCfg), pushWorld);
    const r2 = await pushWorld.pgbk(['check', '--wal-timeout', '2s']);
    assert.is(r2.code, 1, r2.stdout + r2.stderr);
    assert.match(
      r2.stdout,
      new RegExp(
        `FAILED archive_command: archive_command uses configuration ${otherCfg}, whose catalog is ${path.join(dir, 'elsewhere-catalog')}, not ${pushWorld.catalog}`,
      ),
      r2.stdout,
    );
  } finally {
    await setArchiveCommand(saved, pushWorld);
  }
});

test('WAL that does not reach this catalog fails the arrival check after --wal-timeout', async () => {
  const saved = await world.cluster.sql('SHOW archive_command');
  // Succeeds for PostgreSQL, delivers nowhere: only the end-to-end check can tell.
  await setArchiveCommand('true');
  try {
    const started = Date.now();
    const r = await world.pgbk(['check', '--wal-timeout', '3s']);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAILED wal arrival: segment [0-9A-F]{24} \(pg_switch_wal\) did not arrive in .*\/main \(wal\/ or incoming\/\) within 3s/, r.stdout);
    assert.match(r.stdout, /hint: archive_command must deliver WAL to this catalog/);
    assert.ok(Date.now() - started < 30_000, 'bounded by --wal-timeout');
  } finally {
    await setArchiveCommand(saved);
  }
});

test('an invalid configuration is a failed check, exit 1', async () => {
  const dir = path.dirname(world.configPath);
  const cfg = path.join(dir, 'bad.yaml');
  await writeFile(cfg, `catalog: ${world.catalog}\nservers:\n  main:\n    retention: { redundancy: 0 }\n`);
  const r = await runPgbk(['--config', cfg, 'check']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED configuration: .*redundancy/);
});

test.run();
