/** check's incoming WAL identity: only where an incoming/ exists (not an object store without s3.spool). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkIncomingIdentity } from '../../../src/check/catalog-checks.js';
import type { ObservedServer } from '../../../src/model/types.js';

const observed = { name: 'main', backups: [], wal: { segments: [], histories: [] }, incoming: [] } as unknown as ObservedServer;

test('an s3:// catalog without a spool: not shown (it said "WAL in incoming/ belongs to …" of a directory that does not exist)', async () => {
  assert.is(await checkIncomingIdentity('s3://backups/prod', observed, '7715466090440287563'), undefined);
});

test('a local catalog: OK with nothing foreign in incoming/', async () => {
  const r = await checkIncomingIdentity('/var/lib/pgbk-does-not-exist', observed, '7715466090440287563');
  assert.is(r?.ok, true);
});

test.run();
