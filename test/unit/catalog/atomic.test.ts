import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesLength, linkNoClobber, tempPathFor, writeFileAtomic, writeFileNoClobber, writeTemp } from '../../../src/lib/atomic.js';
import { makeTempDir, rejection } from './tmp-catalog.js';

const tmp = makeTempDir();
test.after(() => tmp.cleanup());

test('writeFileAtomic creates and replaces, leaving no temp file', async () => {
  const file = path.join(tmp.dir, 'a.json');
  await writeFileAtomic(file, 'one');
  assert.is(readFileSync(file, 'utf8'), 'one');
  await writeFileAtomic(file, Buffer.from('two'), { mode: 0o600 });
  assert.is(readFileSync(file, 'utf8'), 'two');
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.equal(
    readdirSync(tmp.dir).filter((n) => n.startsWith('.')),
    [],
  );
});

test('writeFileAtomic of pieces: stored one after another, more pieces than one writev takes, empty ones skipped', async () => {
  const file = path.join(tmp.dir, 'pieces');
  // IOV_MAX is 1024 on Linux: 3000 pieces need several writev calls.
  const parts = Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? Buffer.alloc(0) : Buffer.from(`piece ${i};`)));
  await writeFileAtomic(file, parts);
  assert.equal(readFileSync(file), Buffer.concat(parts));
  assert.is(bytesLength(parts), Buffer.concat(parts).length);
  assert.is(bytesLength('é'), 2);
});

test('writeFileAtomic into a missing directory fails and leaves nothing', async () => {
  const err = (await rejection(writeFileAtomic(path.join(tmp.dir, 'nope', 'x'), 'x'))) as NodeJS.ErrnoException;
  assert.is(err.code, 'ENOENT');
});

test('temp names are unique dot-files beside the target', () => {
  const a = tempPathFor('/x/y/NAME');
  const b = tempPathFor('/x/y/NAME');
  assert.is.not(a, b);
  assert.match(path.basename(a), /^\.NAME\.tmp-\d+-[0-9a-f]{12}$/);
  assert.is(path.dirname(a), '/x/y');
});

test('linkNoClobber: first wins, second reports exists and keeps the original', async () => {
  const file = path.join(tmp.dir, 'seg');
  const t1 = await writeTemp(file, 'first');
  const t2 = await writeTemp(file, 'second');
  assert.is(await linkNoClobber(t1, file), 'created');
  assert.is(await linkNoClobber(t2, file), 'exists');
  assert.is(readFileSync(file, 'utf8'), 'first');
  assert.equal(
    readdirSync(tmp.dir).filter((n) => n.startsWith('.')),
    [],
    'temps removed',
  );
});

test('writeFileNoClobber under concurrency: exactly one creator', async () => {
  const file = path.join(tmp.dir, 'race');
  const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileNoClobber(file, `writer ${i}`)));
  assert.is(outcomes.filter((o) => o === 'created').length, 1);
  assert.match(readFileSync(file, 'utf8'), /^writer \d+$/);
  writeFileSync(path.join(tmp.dir, 'plain'), 'x');
  assert.is(await writeFileNoClobber(path.join(tmp.dir, 'plain'), 'y'), 'exists');
  assert.is(readFileSync(path.join(tmp.dir, 'plain'), 'utf8'), 'x');
});

test.run();
