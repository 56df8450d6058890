/**
 * The ssh method writes into an s3:// catalog (its chunks content-addressed in the bucket): validate
 * accepts it, as it does with a local catalog.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../src/config/load.js';

const temps: string[] = [];
function configDir(yaml: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-config-s3-ssh-'));
  temps.push(dir);
  writeFileSync(path.join(dir, 'pgbk.yaml'), yaml);
  return dir;
}
test.after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

const SSH_SERVER = '  main:\n    ssh: { host: db1, user: postgres }\n    pgdata: /var/lib/postgresql/15/main\n    retention: { redundancy: 1 }\n';

test('servers.X.backup.method: ssh is accepted with an s3:// catalog', async () => {
  const c = await loadConfig({
    cwd: configDir(`catalog: s3://pgbk-backups/prod\nservers:\n${SSH_SERVER}    backup: { method: ssh }\n`),
    env: { HOME: '/home/dba' },
  });
  assert.is(c.servers[0]!.backup.method, 'ssh');
});

test('method ssh with a local catalog, and basebackup with an s3:// catalog, are accepted', async () => {
  const local = await loadConfig({
    cwd: configDir(`catalog: /var/lib/pgbk\nservers:\n${SSH_SERVER}    backup: { method: ssh }\n`),
    env: { HOME: '/home/dba' },
  });
  assert.is(local.servers[0]!.backup.method, 'ssh');
  const s3 = await loadConfig({
    cwd: configDir('catalog: s3://pgbk-backups/prod\nservers:\n  main:\n    connection: "host=db1"\n    retention: { redundancy: 1 }\n'),
    env: { HOME: '/home/dba' },
  });
  assert.is(s3.servers[0]!.backup.method, 'basebackup');
});

test.run();
