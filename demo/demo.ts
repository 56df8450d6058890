/**
 * `npm run demo`: pgbk end to end on a throwaway PostgreSQL 15, printed like a tutorial transcript.
 *
 * It creates a temp directory with a new cluster whose archive_command is `pgbk wal-push`, writes a
 * pgbk.yaml, runs validate → plan → apply (first base backup), writes data, has an "accident"
 * (DELETE without WHERE), switches WAL and applies again, lists the catalog and shows status, then
 * restores to the moment before the accident into a new directory, starts PostgreSQL on it and
 * counts the rows. Everything is stopped and removed at the end unless --keep is given.
 *
 * Run as root (CI) it runs PostgreSQL and every pgbk command as the `postgres` OS user, because
 * PostgreSQL refuses root and archive_command (wal-push) runs as the database's user: the catalog
 * and all its files then have one owner. As a normal user everything runs as that user.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLI, runPgbk, type RunResult } from '../test/support/pgbk.js';
import { chownToPostgres, startCluster, startClusterOn, tempDir, waitForQuery, type TestCluster } from '../test/support/postgres.js';

const KEEP = process.argv.includes('--keep');
// The test support removes the temp dirs of clusters it started when the process exits, unless told not to.
if (KEEP) process.env['PGBK_KEEP_TEST_DIRS'] = '1';
const IS_ROOT = process.getuid?.() === 0;

function say(text: string): void {
  process.stdout.write(`\n==> ${text}\n`);
}

function indent(text: string): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/** Single-quote for a shell command line shown to the reader (and for archive_command). */
function shQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

class DemoError extends Error {}

/** Print `$ pgbk ARGS`, run it (as postgres when we are root), print its output; fail on a bad exit. */
async function pgbk(configPath: string, args: readonly string[], okCodes: readonly number[] = [0]): Promise<RunResult> {
  process.stdout.write(`\n$ pgbk ${args.map(shQuote).join(' ')}\n`);
  const r = await runPgbk(args, { asPostgres: true, env: { PGBK_CONFIG: configPath } });
  if (r.stdout !== '') process.stdout.write(`${indent(r.stdout)}\n`);
  if (r.stderr !== '') process.stdout.write(`${indent(r.stderr)}\n`);
  if (r.code === null || !okCodes.includes(r.code)) {
    throw new DemoError(`pgbk ${args.join(' ')} exited with ${String(r.code ?? r.signal)}`);
  }
  return r;
}

/** Print `$ psql -c SQL`, run it, print the result. */
async function psql(cluster: TestCluster, sql: string): Promise<string> {
  process.stdout.write(`\n$ psql -c ${shQuote(sql)}\n`);
  const out = await cluster.sql(sql);
  if (out !== '') process.stdout.write(`${indent(out)}\n`);
  return out;
}

async function waitArchived(cluster: TestCluster): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await cluster.sql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
    if (ready === '0') return;
    if (Date.now() > deadline) throw new DemoError(`WAL still waiting for archive_command after 60 s:\n${cluster.logTail(20)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const root = await tempDir('pgbk-demo-');
  const catalog = path.join(root, 'catalog');
  const configPath = path.join(root, 'pgbk.yaml');
  const restoreDir = path.join(root, 'restored');
  let cluster: TestCluster | undefined;
  let restored: TestCluster | undefined;
  try {
    process.stdout.write(`pgbk demo — everything happens in ${root}${IS_ROOT ? ' (PostgreSQL and pgbk run as the postgres OS user)' : ''}\n`);

    say('A throwaway PostgreSQL 15 cluster whose archive_command hands each WAL segment to pgbk');
    await mkdir(catalog, { mode: 0o750 });
    await chownToPostgres(catalog);
    const archiveCommand = `${[process.execPath, CLI, '--config', configPath, 'wal-push', 'main'].map(shQuote).join(' ')} %p`;
    const pgRoot = path.join(root, 'pg');
    await mkdir(pgRoot);
    cluster = await startCluster({ archiveCommand, dir: pgRoot });
    process.stdout.write(`    initdb + pg_ctl start: ${cluster.pgdata}, port ${cluster.port}\n`);
    process.stdout.write(`    archive_mode = on\n    archive_command = '${archiveCommand.replace(/'/g, "''")}'\n`);

    say(`The configuration (${configPath})`);
    const config = [
      '# yaml-language-server: $schema=../schema/pgbk.schema.json',
      `catalog: ${catalog}`,
      'servers:',
      '  main:',
      '    description: demo cluster',
      `    connection: "${cluster.conninfo}"`,
      '    backup:',
      '      schedule: "0 3 * * *"   # daily at 03:00 UTC; the first backup is due at once',
      '    wal:',
      '      method: push            # archive_command = pgbk wal-push main %p',
      '      maxLag: 15m',
      '    retention:',
      '      redundancy: 2',
      '',
    ].join('\n');
    await writeFile(configPath, config, { mode: 0o644 });
    process.stdout.write(`${indent(config)}\n`);
    process.stdout.write(`\n$ export PGBK_CONFIG=${shQuote(configPath)}\n`);

    say('Check the configuration, see what pgbk would do, and do it');
    await pgbk(configPath, ['validate']);
    await pgbk(configPath, ['plan', '--detailed-exitcode'], [0, 2]);
    await pgbk(configPath, ['apply']);

    say('Write some data');
    await psql(cluster, 'CREATE TABLE orders (id int PRIMARY KEY, item text, placed timestamptz DEFAULT now())');
    await psql(cluster, "INSERT INTO orders (id, item) SELECT g, 'item ' || g FROM generate_series(1, 1000) g");
    const rows = await psql(cluster, 'SELECT count(*) FROM orders');
    const beforeAccident = await psql(cluster, `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
    await new Promise((r) => setTimeout(r, 1100));
    say('An accident: a DELETE without WHERE');
    await psql(cluster, 'DELETE FROM orders');
    await psql(cluster, 'SELECT count(*) FROM orders');

    say('Close the current WAL segment so archive_command ships it, then apply again');
    await psql(cluster, 'SELECT pg_walfile_name(pg_switch_wal())');
    await waitArchived(cluster);
    await pgbk(configPath, ['apply']);
    await pgbk(configPath, ['plan', '--detailed-exitcode']);

    say('What the catalog holds');
    await pgbk(configPath, ['list']);
    await pgbk(configPath, ['status']);

    say(`Point-in-time restore to ${beforeAccident}, just before the accident`);
    await mkdir(restoreDir, { mode: 0o700 });
    await chownToPostgres(restoreDir);
    await pgbk(configPath, ['restore', 'main', 'latest', '--target-dir', restoreDir, '--target-time', beforeAccident, '--target-action', 'promote']);

    say('Start PostgreSQL on the restored directory: it replays archived WAL (pgbk wal-fetch) up to the target');
    // As restored: pgbk wrote archive_command = 'false' into postgresql.auto.conf, so the promoted
    // copy does not push its new timeline into the original's catalog (Barman's recover does the same).
    restored = await startClusterOn(restoreDir);
    process.stdout.write(`    pg_ctl start -D ${restoreDir} (port ${restored.port})\n`);
    await waitForQuery(restored, 'SELECT pg_is_in_recovery()', 'f', 120_000);
    const back = await psql(restored, 'SELECT count(*) FROM orders');
    if (back !== rows) throw new DemoError(`the restored cluster has ${back} rows in orders, expected ${rows}`);
    say(`The restored cluster has all ${back} rows the accident deleted.`);
  } finally {
    say(KEEP ? `Stopping PostgreSQL; keeping ${root} (--keep)` : 'Stopping PostgreSQL and removing the demo directory');
    await restored?.stop().catch(() => undefined);
    if (KEEP) {
      await cluster?.stop().catch(() => undefined);
    } else {
      await restored?.destroy().catch(() => undefined);
      await cluster?.destroy().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  }
}

main().then(
  () => {
    process.stdout.write('\nDemo finished.\n');
  },
  (err: unknown) => {
    process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    if (!(err instanceof DemoError) && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  },
);
