import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { asEffectiveUser, describeUser, lookupUser, ownerOfNearest } from '../../../src/lib/os-user.js';
import { makeTempDir, rejection } from '../catalog/tmp-catalog.js';

const IS_ROOT = process.getuid?.() === 0;
const tmp = makeTempDir('pgbk-os-user-');
test.after(() => tmp.cleanup());

test('lookupUser by name and by uid; unknown names are undefined', async () => {
  const root = await lookupUser('root');
  assert.is(root?.uid, 0);
  assert.is(root?.gid, 0);
  assert.is((await lookupUser(0))?.name, 'root');
  assert.is((await lookupUser('0'))?.name, 'root');
  assert.is(await lookupUser('no-such-user-pgbk'), undefined);
  assert.is(await lookupUser(4_000_000_123), undefined);
  assert.is(describeUser({ name: 'postgres', uid: 105 }), 'postgres (uid 105)');
  assert.is(describeUser({ uid: 1234 }), 'uid 1234');
});

test('ownerOfNearest: the path itself, or its nearest existing parent', async () => {
  const dir = path.join(tmp.dir, 'a');
  mkdirSync(dir);
  const st = statSync(dir);
  assert.equal(await ownerOfNearest(dir), { path: dir, exists: true, uid: st.uid, gid: st.gid });
  const missing = await ownerOfNearest(path.join(dir, 'b', 'c'));
  assert.equal(missing, { path: dir, exists: false, uid: st.uid, gid: st.gid });
  writeFileSync(path.join(dir, 'file'), '');
  assert.is((await ownerOfNearest(path.join(dir, 'file', 'below'))).path, path.join(dir, 'file'), 'ENOTDIR walks up too');
});

test('asEffectiveUser: files written inside belong to the user; root again afterwards, also after a throw', async () => {
  if (!IS_ROOT) return;
  const pg = await lookupUser('postgres');
  assert.ok(pg, 'the postgres OS user exists on test machines');
  chmodSync(tmp.dir, 0o711); // mkdtemp's 0700 would keep postgres out
  const dir = path.join(tmp.dir, 'pg');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, pg.uid, pg.gid);
  await asEffectiveUser(pg, () => writeFile(path.join(dir, 'mark'), 'x'));
  const st = statSync(path.join(dir, 'mark'));
  assert.is(st.uid, pg.uid);
  assert.is(st.gid, pg.gid);
  assert.is(process.geteuid?.(), 0);
  assert.is(process.getegid?.(), 0);
  // As postgres, a root-only directory is out of reach.
  const rootOnly = path.join(tmp.dir, 'root-only');
  mkdirSync(rootOnly, { mode: 0o700 });
  const err = await rejection(asEffectiveUser(pg, () => writeFile(path.join(rootOnly, 'x'), 'x')));
  assert.is((err as NodeJS.ErrnoException).code, 'EACCES');
  assert.is(process.geteuid?.(), 0, 'root again after the failure');
});

test.run();
