/**
 * The write-back head start of a local restore (src/restore/early-flush.ts): which files it flushes
 * and when, from tar -v's member names. The fdatasync itself is replaced by a recorder here; the
 * restore integration tests run the real one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, statfs, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EarlyFlush, writeBackHelps } from '../../../src/restore/early-flush.js';

const DIR = '/restore/target';

function recorder(): { calls: string[]; flush: (file: string) => Promise<void> } {
  const calls: string[] = [];
  return {
    calls,
    flush: async (file) => {
      calls.push(file);
      await new Promise((r) => setTimeout(r, 5));
    },
  };
}

test('a member is flushed once the next one starts, names split anywhere across chunks; the last at finish', async () => {
  const r = recorder();
  const f = new EarlyFlush(DIR, r.flush);
  const text = 'backup_label\nbase/\nbase/1/\nbase/1/1259\nglobal/pg_control\n';
  // Fed in pieces of 3 bytes: a name cut in two must not become two names.
  for (let i = 0; i < text.length; i += 3) f.output(Buffer.from(text.slice(i, i + 3)));
  await new Promise((res) => setTimeout(res, 50));
  const done = ['backup_label', 'base', 'base/1', 'base/1/1259'].map((n) => `${DIR}/${n}`);
  assert.equal([...new Set(r.calls)].sort(), done.sort(), 'all but the member in progress');
  await f.finish();
  assert.equal([...new Set(r.calls)].sort(), [...done, `${DIR}/global/pg_control`].sort(), 'the last member at finish');
});

test('the member being extracted is flushed again while it grows; finish waits for flushes in flight', async () => {
  let inFlight = 0;
  let calls = 0;
  const f = new EarlyFlush(DIR, async () => {
    calls++;
    inFlight++;
    await new Promise((r) => setTimeout(r, 30));
    inFlight--;
  });
  f.output(Buffer.from('base/1/16397\n'));
  await new Promise((r) => setTimeout(r, 700));
  assert.ok(calls >= 2, `a 700 ms member was flushed ${calls} times while written`);
  f.output(Buffer.from('base/1/16398\n'));
  await f.finish();
  assert.is(inFlight, 0, 'finish resolved only after every flush ended');
});

test('a name that leaves the target is never flushed; a failing flush does not fail or hang finish', async () => {
  const r = recorder();
  const f = new EarlyFlush(DIR, async (file) => {
    await r.flush(file);
    if (file.endsWith('bad')) throw new Error('EIO');
  });
  f.output(Buffer.from('../../etc/passwd\n/abs/olute\nbad\nok\n'));
  await f.finish();
  assert.equal(r.calls, [`${DIR}/bad`, `${DIR}/ok`]);
});

test('stop drops what is queued and ends the periodic flush', async () => {
  const r = recorder();
  const f = new EarlyFlush(DIR, r.flush);
  f.output(Buffer.from('a\nb\nc\nd\ne\n'));
  f.stop();
  const before = r.calls.length;
  await new Promise((res) => setTimeout(res, 450));
  assert.ok(r.calls.length <= 2 && r.calls.length === before, `at most the 2 in flight when stopped ran: ${r.calls.join(', ')}`);
});

test('the real flush: files, directories, a symlink and a FIFO in a real directory end without hanging', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-early-flush-'));
  try {
    await writeFile(`${dir}/data`, Buffer.alloc(1 << 20, 7));
    await symlink('/etc/hostname', `${dir}/link`);
    assert.is(spawnSync('mkfifo', [`${dir}/fifo`]).status, 0, 'mkfifo');
    const f = new EarlyFlush(dir);
    f.output(Buffer.from('data\n./\nlink\nfifo\nmissing\n'));
    const t0 = Date.now();
    await f.finish();
    assert.ok(Date.now() - t0 < 5000, 'finish did not wait on the FIFO');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('no head start on tmpfs (nothing to write back); on a disk, or when the file system cannot be told, there is', async () => {
  const shm = '/dev/shm';
  const tmpfs = await statfs(shm).then(
    (s) => Number(s.type) === 0x01021994,
    () => false,
  );
  if (tmpfs) assert.is(await writeBackHelps(shm), false, '/dev/shm is tmpfs here');
  const disk = os.tmpdir();
  if (Number((await statfs(disk)).type) !== 0x01021994) assert.is(await writeBackHelps(disk), true, `${disk} is on a disk`);
  assert.is(await writeBackHelps('/no/such/dir'), true);
});

test.run();
