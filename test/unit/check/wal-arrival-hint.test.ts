/** check's hint when the switched segment never arrived: an object store's usual cause is named. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arrivalHint } from '../../../src/check/wal-arrival.js';

test("an s3:// catalog: archive_command's own OS user and environment need the credentials and the CA file", () => {
  const hint = arrivalHint('s3://backups/prod');
  assert.match(hint, "runs as PostgreSQL's OS user with PostgreSQL's environment");
  assert.match(hint, 's3.tls.caFile');
  assert.match(hint, 'wal-push --print-archive-command');
});

test('a local catalog: compare the path (unchanged advice)', () => {
  assert.match(arrivalHint('/var/lib/pgbk'), "compare it with this server's catalog path");
  assert.not.match(arrivalHint('/var/lib/pgbk'), 'AWS');
});

test.run();
