// test-lane: light — refusal of two servers naming one cluster; no time bound
/**
 * Issue 9 item 6: two server names for one real PostgreSQL, through connections that differ (the
 * unix socket and 127.0.0.1, other dbname) so the config check cannot tell — the system identifier
 * at first contact does. apply and backup refuse both, naming both, and write nothing for either.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runPgbk } from '../../support/pgbk.js';
import { startCluster, tempDir, type TestCluster } from '../../support/postgres.js';

let cluster: TestCluster;
let root: string;
let catalog: string;
let config: string;

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

test.before(async () => {
  cluster = await startCluster();
  root = await tempDir('pgbk-same-cluster-');
  catalog = path.join(root, 'catalog');
  config = path.join(root, 'pgbk.yaml');
  const server = (conninfo: string): string => `    connection: "${conninfo}"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 1 }\n`;
  await writeFile(
    config,
    `catalog: ${catalog}\nservers:\n  a:\n${server(cluster.conninfo)}  b:\n${server(`host=127.0.0.1 port=${cluster.port} user=postgres dbname=template1`)}`,
  );
});

test.after(async () => {
  await cluster?.destroy();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

test('apply: both servers refused, each message naming both; nothing recorded, backed up or archived', async () => {
  const r = await runPgbk(['--config', config, 'apply']);
  assert.is.not(r.code, 0, r.stdout);
  const said = r.stderr.split('\n').filter((l) => l.includes('servers "a" and "b" are the same PostgreSQL cluster'));
  assert.is(said.length, 2, r.stderr);
  const sysid = await cluster.sql('SELECT system_identifier FROM pg_control_system()');
  assert.ok(
    said.every((l) => l.includes(`system identifier ${sysid}`)),
    r.stderr,
  );
  for (const s of ['a', 'b']) {
    // The lock (released) may exist; no identity, no backup, no WAL, nothing else.
    const files = (await filesUnder(path.join(catalog, s))).filter((f) => path.basename(f) !== 'lock');
    assert.equal(files, [], `written for ${s}: ${files.join(', ')}`);
  }
});

test('backup: a one-off backup of either server is refused the same way', async () => {
  const r = await runPgbk(['--config', config, 'backup', 'b']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, 'servers "a" and "b" are the same PostgreSQL cluster');
  assert.not.ok(existsSync(path.join(catalog, 'b', 'server.json')));
  assert.equal(await filesUnder(path.join(catalog, 'b', 'backups')), []);
});

test('control: with one name for the cluster, apply records it and takes the first backup', async () => {
  await writeFile(
    config,
    `catalog: ${catalog}\nservers:\n  a:\n    connection: "${cluster.conninfo}"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 1 }\n`,
  );
  const r = await runPgbk(['--config', config, 'apply']);
  assert.ok(existsSync(path.join(catalog, 'a', 'server.json')), r.stderr);
  assert.not.match(r.stderr, 'same PostgreSQL cluster');
});

test.run();
