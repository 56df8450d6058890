/**
 * What becomes of tablespace_map in the one restore, each way as it was before restore ran over a
 * Transport (issue 11: no on-disk change): `pgbk restore` on this host removes it (its pg_tblspc
 * links stand), `restore --remote` rewrites it with the restored locations. And the restore's
 * flush reaches every file and directory it is given. Both over LocalTransport on a temp dir (a
 * "remote" host here is LocalTransport marked not local: the branch is chosen by the host).
 * The on-disk result with PostgreSQL started is test/integration/restore/local-tablespace-map.test.ts.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { flushRestored, settleTablespaceMap } from '../../../src/restore/finalize-pgdata.js';
import { localHost, remoteHost } from '../../../src/restore/host.js';
import { LocalTransport } from '../../../src/transport/local.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-settle-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const TS = [{ oid: '16385', location: '/srv/restored ts/16385' }];
const SOURCE_MAP = '16385 /srv/source-ts\n';

test('this host: the backup tablespace_map is removed, nothing is written', async () => {
  await withDir(async (dir) => {
    await writeFile(path.join(dir, 'tablespace_map'), SOURCE_MAP);
    assert.equal(await settleTablespaceMap(localHost(), dir, TS), []);
    assert.not.ok(existsSync(path.join(dir, 'tablespace_map')));
  });
});

test('over SSH: tablespace_map is rewritten with the restored locations (escaped as PostgreSQL 15 reads them)', async () => {
  await withDir(async (dir) => {
    await writeFile(path.join(dir, 'tablespace_map'), SOURCE_MAP);
    const map = path.join(dir, 'tablespace_map');
    assert.equal(await settleTablespaceMap(remoteHost(new LocalTransport()), dir, TS), [`${dir}/tablespace_map`]);
    assert.is(await readFile(map, 'utf8'), '16385 /srv/restored ts/16385\n');
  });
});

test('no tablespaces: tablespace_map is left alone either way', async () => {
  await withDir(async (dir) => {
    await writeFile(path.join(dir, 'tablespace_map'), SOURCE_MAP);
    assert.equal(await settleTablespaceMap(localHost(), dir, []), []);
    assert.equal(await settleTablespaceMap(remoteHost(new LocalTransport()), dir, []), []);
    assert.is(await readFile(path.join(dir, 'tablespace_map'), 'utf8'), SOURCE_MAP);
  });
});

test('flushRestored syncs the trees it is given, and names the host and path when it cannot', async () => {
  await withDir(async (dir) => {
    await mkdir(path.join(dir, 'data', 'base', '1'), { recursive: true });
    await writeFile(path.join(dir, 'data', 'base', '1', '1259'), 'x');
    await mkdir(path.join(dir, 'ts dir'));
    await flushRestored(localHost(), [path.join(dir, 'data'), path.join(dir, 'ts dir')], 'main');
    const missing = path.join(dir, 'nowhere');
    try {
      await flushRestored(localHost(), [missing], 'main');
      assert.unreachable('a missing directory was flushed');
    } catch (err) {
      assert.match((err as Error).message, /cannot flush the restored files to disk/);
      assert.match((err as Error).message, /nowhere/);
    }
  });
});

test.run();
