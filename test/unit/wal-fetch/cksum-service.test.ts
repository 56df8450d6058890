import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startCksumService } from '../../../src/wal-fetch/cksum-service.js';
import { putInSpoolWith } from '../../../src/wal-fetch/spool.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-cksum-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const shellCksum = (file: string): string => execFileSync('sh', ['-c', 'cksum < "$1"', 'sh', file], { encoding: 'utf8' }).trim();

test('cksum service: many files at once, each answer equal to `cksum < file` and in request order', async () => {
  await withDir(async (dir) => {
    const files: string[] = [];
    for (let i = 0; i < 12; i++) {
      const f = path.join(dir, `f ${i}`); // a space: the name is passed whole
      await writeFile(f, Buffer.alloc(1000 * (i + 1) + i, i));
      files.push(f);
    }
    const svc = startCksumService();
    try {
      const got = await Promise.all(files.map((f) => svc.sum(f)));
      assert.equal(
        got,
        files.map((f) => shellCksum(f)),
      );
    } finally {
      svc.close();
    }
  });
});

test('cksum service: a file it cannot read fails that request only; a name with a newline still gets its sum', async () => {
  await withDir(async (dir) => {
    const good = path.join(dir, 'good');
    const odd = path.join(dir, 'odd\nname');
    await writeFile(good, 'hello\n');
    await writeFile(odd, 'other\n');
    const svc = startCksumService();
    try {
      const [missing, ok, nl] = await Promise.allSettled([svc.sum(path.join(dir, 'missing')), svc.sum(good), svc.sum(odd)]);
      assert.is(missing.status, 'rejected');
      assert.match(String((missing as PromiseRejectedResult).reason), /missing: failed/);
      assert.equal(ok, { status: 'fulfilled', value: shellCksum(good) });
      assert.equal(nl, { status: 'fulfilled', value: shellCksum(odd) });
    } finally {
      svc.close();
    }
  });
});

test('cksum service: close rejects nothing answered yet as closed, and a later request starts a new shell', async () => {
  await withDir(async (dir) => {
    const f = path.join(dir, 'f');
    await writeFile(f, Buffer.alloc(4096, 1));
    const svc = startCksumService();
    try {
      assert.is(await svc.sum(f), shellCksum(f));
      const pending = svc.sum(f);
      svc.close();
      await pending.then(
        () => assert.unreachable('answered after close'),
        (err: Error) => assert.match(err.message, /closed/),
      );
      assert.is(await svc.sum(f), shellCksum(f));
    } finally {
      svc.close();
    }
  });
});

test('putInSpoolWith through the service: the sidecar is what the fast path computes', async () => {
  await withDir(async (spool) => {
    const name = '000000010000000000000007';
    const data = Buffer.alloc(1 << 20, 3);
    data[777] = 9;
    const svc = startCksumService();
    try {
      await putInSpoolWith(
        spool,
        name,
        async (fd) => {
          const { writeSync } = await import('node:fs');
          return writeSync(fd, data);
        },
        svc.sum,
      );
    } finally {
      svc.close();
    }
    assert.equal((await readdir(spool)).sort(), [name, `${name}.ck`]);
    assert.is((await readFile(path.join(spool, `${name}.ck`), 'utf8')).trim(), shellCksum(path.join(spool, name)));
  });
});

test('the wal-fetch workers run at nice 10 (PostgreSQL keeps the CPU it replays with), and so does its cksum shell', () => {
  const worker = new URL('../../../src/wal-fetch/priority.js', import.meta.url).href;
  const svc = new URL('../../../src/wal-fetch/cksum-service.js', import.meta.url).href;
  const script = `
    const { yieldToRecovery } = await import(${JSON.stringify(worker)});
    const { startCksumService } = await import(${JSON.stringify(svc)});
    const os = await import('node:os');
    const fs = await import('node:fs');
    const before = os.getPriority();
    yieldToRecovery();
    const s = startCksumService();
    await s.sum(process.execPath);
    // the shell's pid: the one child of this process
    const kids = fs.readFileSync('/proc/' + process.pid + '/task/' + process.pid + '/children', 'utf8').trim().split(/s+/).map(Number);
    const shellNice = kids.map((k) => os.getPriority(k));
    s.close();
    console.log(JSON.stringify({ before, after: os.getPriority(), shellNice }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const { before, after, shellNice } = JSON.parse(out) as { before: number; after: number; shellNice: number[] };
  assert.is(after, Math.max(before, 10));
  assert.ok(shellNice.length >= 1 && shellNice.every((n) => n === after), `cksum shell nice ${shellNice.join(',')}`);
});

test.run();
