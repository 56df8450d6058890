/**
 * `list --json` and `status --json` with the per-user caches on (config and WAL index): what they
 * show follows the catalog as backups and segments come and go.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBackupDir, deleteBackup, writeBackupRecord } from '../../../src/catalog/backups.js';
import { recordIdentity } from '../../../src/catalog/identity.js';
import { ensureServerDirs, walRoot } from '../../../src/catalog/layout.js';
import { segmentNameFrom, walDirName } from '../../../src/pg/wal-name.js';
import { makeTempDir } from '../catalog/tmp-catalog.js';
import { backup, IDENTITY, SEG } from '../plan/fixtures.js';
import { runCli } from './run-cli.js';

const tmp = makeTempDir('pgbk-read-cache-');
const catalog = path.join(tmp.dir, 'catalog');
const config = path.join(tmp.dir, 'pgbk.yaml');
const env = { XDG_CACHE_HOME: path.join(tmp.dir, 'cache') };
test.after(() => tmp.cleanup());

function addSegments(from: number, to: number): void {
  for (let s = from; s <= to; s++) {
    const name = segmentNameFrom(1, s, SEG);
    const dir = path.join(walRoot(catalog, 'main'), walDirName(name));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${name}.zst`), '');
  }
}

async function addBackup(id: string, beginSeg: number): Promise<void> {
  await createBackupDir(catalog, 'main', id);
  const wal = segmentNameFrom(1, beginSeg, SEG);
  await writeBackupRecord(catalog, backup(id, { systemIdentifier: IDENTITY.systemIdentifier, beginWal: wal, endWal: wal }));
}

async function json(command: string): Promise<Record<string, unknown>> {
  const r = await runCli([command, '--json', '--config', config], { env });
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function listed(): Promise<{ id: string; walSegments: number | null }[]> {
  return (await json('list')).backups as { id: string; walSegments: number | null }[];
}

async function walOf(): Promise<{ walSegments: number; lastWal: string | null }> {
  return ((await json('status')).servers as { walSegments: number; lastWal: string | null }[])[0]!;
}

test('backups and segments added and removed show at once, caches on', async () => {
  writeFileSync(config, `catalog: ${catalog}\nservers:\n  main:\n    retention: { redundancy: 2 }\n`);
  mkdirSync(env.XDG_CACHE_HOME);
  await ensureServerDirs(catalog, 'main');
  await recordIdentity(catalog, 'main', IDENTITY);
  addSegments(0xf8, 0x108);
  await addBackup('20261120T030000Z', 0xf8);
  await addBackup('20261121T030000Z', 0x100);
  assert.equal(await listed(), await listed()); // the second run from the caches: the same
  assert.equal(
    readdirSync(path.join(env.XDG_CACHE_HOME, 'pgbk'))
      .map((n) => n.replace(/-.*/, ''))
      .sort(),
    ['backups', 'config', 'wal'],
  );
  assert.equal(
    (await listed()).map((b) => [b.id, b.walSegments]),
    [
      ['20261120T030000Z', 8],
      ['20261121T030000Z', 9],
    ],
  );
  await addBackup('20261122T030000Z', 0x104);
  addSegments(0x109, 0x10a);
  assert.equal(
    (await listed()).map((b) => [b.id, b.walSegments]),
    [
      ['20261120T030000Z', 8],
      ['20261121T030000Z', 4],
      ['20261122T030000Z', 7],
    ],
  );
  assert.equal(await walOf(), { ...(await walOf()), walSegments: 0x10a - 0xf8 + 1, lastWal: segmentNameFrom(1, 0x10a, SEG) });
  await deleteBackup(catalog, 'main', '20261121T030000Z');
  assert.equal(
    (await listed()).map((b) => b.id),
    ['20261120T030000Z', '20261122T030000Z'],
  );
});

test.run();
