import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listIncoming } from '../../../src/catalog/incoming.js';
import { ensureServerDirs, errorsDir, incomingDir } from '../../../src/catalog/layout.js';
import { countQuarantined, quarantineFile } from '../../../src/catalog/quarantine.js';
import { makeTempDir } from './tmp-catalog.js';

const tmp = makeTempDir();
const catalog = tmp.dir;
test.before(async () => {
  await ensureServerDirs(catalog, 'main');
});
test.after(() => tmp.cleanup());

test('listIncoming: sorted, classified, with sizes', async () => {
  const files: Record<string, string> = {
    '000000010000000000000002': 'bb',
    '000000010000000000000001': 'a',
    '00000002.history': 'hhh',
    '.000000010000000000000003.Xa8d2k': 'in flight',
    'notes.txt': 'x',
  };
  for (const [name, body] of Object.entries(files)) writeFileSync(path.join(incomingDir(catalog, 'main'), name), body);
  mkdirSync(path.join(incomingDir(catalog, 'main'), 'subdir'));
  const listed = await listIncoming(catalog, 'main');
  for (const f of listed) assert.ok(f.mtime !== undefined && Math.abs(Date.parse(f.mtime) - Date.now()) < 60_000, `${f.name} has its mtime`);
  assert.equal(
    listed.map(({ mtime: _m, ...rest }) => rest),
    [
      { name: '.000000010000000000000003.Xa8d2k', kind: 'in-flight', size: 9 },
      { name: '000000010000000000000001', kind: 'segment', size: 1 },
      { name: '000000010000000000000002', kind: 'segment', size: 2 },
      { name: '00000002.history', kind: 'history', size: 3 },
      { name: 'notes.txt', kind: 'unknown', size: 1 },
      { name: 'subdir', kind: 'unknown', size: 0 },
    ],
  );
  assert.equal(await listIncoming(catalog, 'absent'), []);
});

test('quarantineFile moves the file aside with a reason, never overwriting', async () => {
  const now = new Date('2026-11-24T03:00:04.000Z');
  const src = path.join(incomingDir(catalog, 'main'), '000000010000000000000001');
  const first = await quarantineFile(catalog, 'main', src, 'WAL belongs to cluster 42', now);
  assert.is(first, path.join(errorsDir(catalog, 'main'), '000000010000000000000001.20261124T030004Z'));
  assert.not.ok(existsSync(src));
  assert.is(readFileSync(first, 'utf8'), 'a');
  const reason = readFileSync(`${first}.reason`, 'utf8');
  assert.match(reason, 'reason: WAL belongs to cluster 42');
  assert.match(reason, `original: ${src}`);
  assert.match(reason, 'time: 2026-11-24T03:00:04.000Z');

  writeFileSync(src, 'second copy');
  const second = await quarantineFile(catalog, 'main', src, 'again', now);
  assert.is(second, `${first}-1`);
  assert.is(readFileSync(first, 'utf8'), 'a', 'the first quarantined copy is untouched');
  assert.is(readFileSync(second, 'utf8'), 'second copy');
  assert.is(await countQuarantined(catalog, 'main'), 2);
  assert.equal(
    readdirSync(errorsDir(catalog, 'main')).filter((n) => n.startsWith('.')),
    [],
  );
  assert.is(await countQuarantined(catalog, 'absent'), 0);
});

test("quarantineFile keeps the refused file's mode and leaves no temp file in errors/", async () => {
  const src = path.join(incomingDir(catalog, 'main'), '000000010000000000000009');
  writeFileSync(src, 'refused');
  chmodSync(src, 0o600);
  const target = await quarantineFile(catalog, 'main', src, 'garbage', new Date('2026-11-25T00:00:00.000Z'));
  assert.is(statSync(target).mode & 0o777, 0o600);
  assert.is(statSync(`${target}.reason`).mode & 0o777, 0o640);
  assert.is(readFileSync(target, 'utf8'), 'refused');
  assert.not.ok(existsSync(src));
  assert.equal(
    readdirSync(errorsDir(catalog, 'main')).filter((n) => n.startsWith('.')),
    [],
  );
});

test.run();
