/**
 * The ssh method cannot write into an s3:// catalog yet (it stores a chunk tree with hard links):
 * validate refuses it at the method's line, naming the server and the field, whether the server
 * sets it or inherits it from defaults; a local catalog keeps it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import { PgbkError } from '../../../src/errors.js';

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

async function problem(yaml: string): Promise<string> {
  try {
    await loadConfig({ cwd: configDir(yaml), env: { HOME: '/home/dba' } });
  } catch (err) {
    assert.instance(err, PgbkError);
    return (err as PgbkError).message;
  }
  throw new Error('the configuration was accepted');
}

test('servers.X.backup.method: ssh with an s3:// catalog is refused at its line, naming server and field', async () => {
  const msg = await problem(`catalog: s3://pgbk-backups/prod\nservers:\n${SSH_SERVER}    backup: { method: ssh }\n`);
  assert.match(msg, /pgbk\.yaml:7:\d+/);
  assert.match(msg, /servers\.main\.backup\.method/);
  assert.match(msg, /server main: method ssh cannot back up into the object-storage catalog s3:\/\/pgbk-backups\/prod yet; use method basebackup/);
});

test('defaults.backup.method: ssh inherited by a server with an s3:// catalog is refused at the default', async () => {
  const msg = await problem(`catalog: s3://pgbk-backups/prod\ndefaults:\n  backup: { method: ssh }\nservers:\n${SSH_SERVER}`);
  assert.match(msg, /defaults\.backup\.method/);
  assert.match(msg, /server main: method ssh cannot back up into the object-storage catalog/);
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
