import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readIdentity, recordIdentity } from '../../../src/catalog/identity.js';
import { ensureServerDirs, serverJsonPath } from '../../../src/catalog/layout.js';
import { PgbkError } from '../../../src/errors.js';
import type { ServerIdentity } from '../../../src/model/types.js';
import { makeTempDir, rejection } from './tmp-catalog.js';

const tmp = makeTempDir();
const catalog = tmp.dir;
test.before(async () => {
  await ensureServerDirs(catalog, 'main');
});
test.after(() => tmp.cleanup());

const first: ServerIdentity = {
  systemIdentifier: '7711760302938269755',
  pgVersion: 150008,
  walSegmentSize: 16 * 1024 * 1024,
  firstContact: '2026-11-24T03:00:00.000Z',
};

test('first contact records; later contacts return the original', async () => {
  assert.is(await readIdentity(catalog, 'main'), undefined);
  assert.equal(await recordIdentity(catalog, 'main', first), first);
  const again = await recordIdentity(catalog, 'main', { ...first, pgVersion: 150009, firstContact: '2027-01-01T00:00:00.000Z' });
  assert.equal(again, first);
  assert.equal(JSON.parse(readFileSync(serverJsonPath(catalog, 'main'), 'utf8')), first);
  assert.is(statSync(serverJsonPath(catalog, 'main')).mode & 0o777, 0o640, 'server.json is not world-readable');
});

test('another cluster is refused, naming both ids and the way out', async () => {
  const err = (await rejection(recordIdentity(catalog, 'main', { ...first, systemIdentifier: '7000000000000000001' }))) as PgbkError;
  assert.instance(err, PgbkError);
  assert.is(err.code, 'IDENTITY');
  assert.is(err.server, 'main');
  assert.match(err.message, '7000000000000000001');
  assert.match(err.message, '7711760302938269755');
  assert.match(
    err.hint ?? '',
    `this catalog belongs to cluster 7711760302938269755; point the server at a new catalog or remove ${serverJsonPath(catalog, 'main')}`,
  );
  const seg = (await rejection(recordIdentity(catalog, 'main', { ...first, walSegmentSize: 64 * 1024 * 1024 }))) as PgbkError;
  assert.is(seg.code, 'IDENTITY');
});

test('concurrent first contacts: one file, the loser is checked against it', async () => {
  await ensureServerDirs(catalog, 'race');
  const other = { ...first, systemIdentifier: '42' };
  const results = await Promise.allSettled([recordIdentity(catalog, 'race', first), recordIdentity(catalog, 'race', other)]);
  const ok = results.filter((r) => r.status === 'fulfilled');
  assert.is(ok.length, 1);
  const rejected = results.find((r) => r.status === 'rejected');
  assert.is((rejected as PromiseRejectedResult).reason.code, 'IDENTITY');
});

test('a damaged server.json is a catalog error', async () => {
  await ensureServerDirs(catalog, 'bad');
  writeFileSync(serverJsonPath(catalog, 'bad'), '{"systemIdentifier": 123}');
  const err = (await rejection(readIdentity(catalog, 'bad'))) as PgbkError;
  assert.is(err.code, 'CATALOG');
});

test.run();
