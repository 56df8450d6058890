import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BOOT_ID_FILE, defaultSpoolDir, discardSpooled, ensureSpoolDir, pruneSpool, putInSpool, spoolView } from '../../../src/wal-fetch/spool.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-spool-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const NAME = '000000010000000000000005';

test('defaultSpoolDir: beside pg_wal in the data directory', () => {
  assert.is(defaultSpoolDir('pg_wal/RECOVERYXLOG', '/data/pg'), '/data/pg/.pgbk-spool');
});

test('putInSpool: data under its final name plus a sidecar holding its identity as the fast path reads it (boot id, `stat -c "%d %i %s %.9Y"`), no temp files left', async () => {
  await withDir(async (spool) => {
    const data = Buffer.alloc(1 << 20, 7);
    data[12345] = 1;
    await putInSpool(spool, NAME, data);
    assert.equal((await readdir(spool)).sort(), [NAME, `${NAME}.ck`]);
    assert.ok((await readFile(path.join(spool, NAME))).equals(data));
    const shell = execFileSync('sh', ['-c', `read -r b < ${BOOT_ID_FILE}; exec 3< ${NAME}; echo "$b $(stat -c '%d %i %s %.9Y' - <&3)"`], {
      cwd: spool,
      encoding: 'utf8',
    }).trim();
    assert.is((await readFile(path.join(spool, `${NAME}.ck`), 'utf8')).trim(), shell);
    assert.match(shell, new RegExp(`^[0-9a-f-]{36} \\d+ \\d+ ${data.length} \\d+\\.\\d{9}$`), 'boot id, device, inode, size, mtime in ns');
    assert.equal((await spoolView(spool))?.waiting, new Set([NAME]));
    await discardSpooled(spool, NAME);
    assert.equal(await readdir(spool), []);
  });
});

test('putInSpool: two writers spooling the same segment at once leave a sidecar that names the published file', async () => {
  await withDir(async (spool) => {
    const data = Buffer.alloc(1 << 20, 3);
    for (let i = 0; i < 20; i++) {
      await discardSpooled(spool, NAME);
      await Promise.all([putInSpool(spool, NAME, data), putInSpool(spool, NAME, data), putInSpool(spool, NAME, data)]);
      const shell = execFileSync('sh', ['-c', `read -r b < ${BOOT_ID_FILE}; exec 3< ${NAME}; echo "$b $(stat -c '%d %i %s %.9Y' - <&3)"`], {
        cwd: spool,
        encoding: 'utf8',
      }).trim();
      assert.is((await readFile(path.join(spool, `${NAME}.ck`), 'utf8')).trim(), shell, `round ${i}`);
      assert.equal((await readdir(spool)).sort(), [NAME, `${NAME}.ck`], 'no temp or publishing files left');
    }
  });
});

test('putInSpool: a second writer after the first leaves the spooled file and its sidecar alone (the fast path may be checking them); once NAME is consumed it spools again', async () => {
  await withDir(async (spool) => {
    const data = Buffer.alloc(1 << 20, 3);
    await putInSpool(spool, NAME, data);
    const first = await stat(path.join(spool, NAME));
    const sidecar = await readFile(path.join(spool, `${NAME}.ck`), 'utf8');
    await putInSpool(spool, NAME, data);
    assert.is((await stat(path.join(spool, NAME))).ino, first.ino, 'the first copy stays');
    assert.is(await readFile(path.join(spool, `${NAME}.ck`), 'utf8'), sidecar, 'its sidecar stays');
    assert.equal((await readdir(spool)).sort(), [NAME, `${NAME}.ck`], 'the second copy is dropped');
    // The fast path renamed NAME away (its sidecar stays behind): a new copy brings its own.
    await rm(path.join(spool, NAME));
    await putInSpool(spool, NAME, data);
    assert.is.not(await readFile(path.join(spool, `${NAME}.ck`), 'utf8'), sidecar);
  });
});

test('putInSpool: only segment names; fails once the spool is gone', async () => {
  await withDir(async (dir) => {
    await assert.not.ok(
      await putInSpool(dir, '00000002.history', Buffer.from('x')).then(
        () => true,
        () => false,
      ),
    );
    await assert.not.ok(
      await putInSpool(path.join(dir, 'gone'), NAME, Buffer.from('x')).then(
        () => true,
        () => false,
      ),
    );
    assert.is(await spoolView(path.join(dir, 'gone')), undefined);
  });
});

test('pruneSpool: segments PostgreSQL has passed go (any timeline), later ones stay', async () => {
  await withDir(async (spool) => {
    for (const n of ['000000010000000000000003', '000000010000000000000004', '000000010000000000000006']) {
      await putInSpool(spool, n, Buffer.from('x'));
    }
    await writeFile(path.join(spool, '.000000010000000000000007.tmp-999999999-abcd'), 'partial');
    await pruneSpool(spool, '000000020000000000000005');
    assert.equal((await readdir(spool)).sort(), ['000000010000000000000006', '000000010000000000000006.ck']);
  });
});

test('ensureSpoolDir: creates 0700; refuses a group/world-accessible directory or a symlink', async () => {
  await withDir(async (dir) => {
    const spool = path.join(dir, '.pgbk-spool');
    assert.ok(await ensureSpoolDir(spool));
    assert.is((await stat(spool)).mode & 0o777, 0o700);
    assert.ok(await ensureSpoolDir(spool), 'an existing private spool is accepted');
    await chmod(spool, 0o755);
    assert.not.ok(await ensureSpoolDir(spool));
    const other = path.join(dir, 'other');
    await mkdir(other, { mode: 0o700 });
    const { symlink } = await import('node:fs/promises');
    await symlink(other, path.join(dir, 'link'));
    assert.not.ok(await ensureSpoolDir(path.join(dir, 'link')));
  });
});

test.run();
