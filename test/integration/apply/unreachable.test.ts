// test-lane: light — a closed port fails at once (connect refused); --lock-timeout 5s is not reached
/**
 * `plan` tells the truth before `apply` does (issue #10 item 6): a server nobody answers for and a
 * catalog that does not exist are warned about by plan, and apply counts the server it could not
 * prepare as a failure in its summary line. No PostgreSQL needed: the connection points at a
 * closed port on 127.0.0.1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runPgbk } from '../../support/pgbk.js';
import { freePort } from '../../support/free-port.js';
import { tempDir } from '../../support/postgres.js';

let root: string;
let configPath: string;
let catalog: string;

test.before(async () => {
  root = await tempDir('pgbk-unreachable-');
  catalog = path.join(root, 'no-such-catalog');
  configPath = path.join(root, 'pgbk.yaml');
  const port = await freePort();
  await writeFile(
    configPath,
    `catalog: ${catalog}\nservers:\n  main:\n    connection: "host=127.0.0.1 port=${port} user=postgres dbname=postgres connect_timeout=5"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 1 }\n`,
  );
});

test.after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('plan warns that the server cannot be reached and that the catalog does not exist', async () => {
  const r = await runPgbk(['--config', configPath, 'plan']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /! catalog-missing: catalog .*no-such-catalog does not exist: apply creates it empty/, r.stdout);
  assert.match(r.stdout, /! server-unreachable: cannot reach PostgreSQL: connect failed on .*ECONNREFUSED.*; apply cannot prepare this server/, r.stdout);
  const j = await runPgbk(['--config', configPath, 'plan', '--json']);
  const warnings = (JSON.parse(j.stdout) as { warnings: { code: string }[] }).warnings.map((w) => w.code);
  assert.ok(warnings.includes('server-unreachable') && warnings.includes('catalog-missing'), j.stdout);
});

test('apply counts the server it could not prepare as failed, exit 1', async () => {
  const r = await runPgbk(['--config', configPath, 'apply', '--lock-timeout', '5s']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^Apply: 0 done, 0 skipped, 1 failed \(1 server could not be prepared: main\)\.$/m, r.stdout);
  assert.match(r.stderr, /server main: .*connect failed/, r.stderr);
});

test.run();
