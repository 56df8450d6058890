/**
 * wal: { method: stream } into an s3:// catalog needs s3.spool (pg_receivewal writes locally
 * first): validate refuses it at the method's line naming file, server and field; with a spool,
 * or with a local catalog, it is accepted. A base backup into s3:// needs no spool at all.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../../src/config/load.js';
import { PgbkError } from '../../../src/errors.js';

const temps: string[] = [];
function configDir(yaml: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-config-s3-stream-'));
  temps.push(dir);
  writeFileSync(path.join(dir, 'pgbk.yaml'), yaml);
  return dir;
}
test.after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

const STREAM = '  main:\n    connection: "host=db1"\n    retention: { redundancy: 1 }\n    wal: { method: stream }\n';

test('servers.X.wal.method: stream on an s3:// catalog without s3.spool is refused at its line', async () => {
  let msg = '';
  try {
    await loadConfig({ cwd: configDir(`catalog: s3://pgbk-backups/prod\nservers:\n${STREAM}`), env: { HOME: '/home/dba' } });
  } catch (err) {
    assert.instance(err, PgbkError);
    msg = (err as PgbkError).message;
  }
  assert.match(msg, /pgbk\.yaml:6:\d+/);
  assert.match(msg, /servers\.main\.wal\.method/);
  assert.match(msg, /server main: method stream into the object-storage catalog s3:\/\/pgbk-backups\/prod needs s3\.spool/);
});

test('stream with s3.spool, stream on a local catalog, and basebackup on s3:// without a spool are accepted', async () => {
  const spool = await loadConfig({
    cwd: configDir(`catalog: s3://pgbk-backups/prod\ns3: { spool: /var/spool/pgbk }\nservers:\n${STREAM}`),
    env: { HOME: '/home/dba' },
  });
  assert.is(spool.servers[0]!.wal.method, 'stream');
  const local = await loadConfig({ cwd: configDir(`catalog: /var/lib/pgbk\nservers:\n${STREAM}`), env: { HOME: '/home/dba' } });
  assert.is(local.servers[0]!.wal.method, 'stream');
  const noSpool = await loadConfig({
    cwd: configDir('catalog: s3://pgbk-backups/prod\nservers:\n  main:\n    connection: "host=db1"\n    retention: { redundancy: 1 }\n'),
    env: { HOME: '/home/dba' },
  });
  assert.is(noSpool.s3?.spool, undefined);
});

test.run();
