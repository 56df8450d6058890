/**
 * The Transport contract (DESIGN.md §2: one interface, one shared suite): every implementation
 * runs exactly these tests. `setup` gives a connected transport and a scratch directory on the far
 * side that the transport's user may write.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, readlink, realpath, symlink, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import type { Transport } from '../../../src/transport/transport.js';

export interface ContractWorld {
  readonly transport: Transport;
  /** Scratch directory, visible to this test process too (same machine). */
  readonly dir: string;
  /** Make a path created by the test process accessible to the transport's user. */
  readonly share: (p: string) => Promise<void>;
  cleanup(): Promise<void>;
}

/** uvu has no async throws: expect `fn` to reject with an error that passes `check`. */
export async function rejects(fn: () => Promise<unknown>, check: RegExp | ((e: unknown) => boolean)): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const ok = check instanceof RegExp ? check.test((err as Error).message) : check(err);
    assert.ok(ok, `unexpected error: ${(err as Error).message}`);
    return;
  }
  assert.unreachable('expected a rejection');
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export function transportContract(name: string, setup: () => Promise<ContractWorld>): void {
  const t = suite<{ w?: ContractWorld }>(`transport contract: ${name}`, {});
  t.before(async (ctx) => {
    ctx.w = await setup();
  });
  t.after(async (ctx) => {
    await ctx.w?.cleanup();
  });
  const w = (ctx: { w?: ContractWorld }): ContractWorld => {
    if (ctx.w === undefined) throw new Error('setup failed');
    return ctx.w;
  };

  t('exec passes every argument through unchanged (spaces, quotes, $, globs, empty)', async (ctx) => {
    const args = ['a b', "it's", '$HOME', '*', '', 'x"y', 'back\\slash', 'new\nline'];
    const r = await w(ctx).transport.run(['printf', '%s\\0', ...args]);
    assert.is(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString('utf8').split('\0').slice(0, -1), args);
  });

  t('exec reports the exit status and stderr', async (ctx) => {
    const r = await w(ctx).transport.run(['sh', '-c', 'echo oops >&2; exit 7']);
    assert.is(r.code, 7);
    assert.match(r.stderr, /oops/);
  });

  t('exec streams stdin to the program and 20 MiB of output back intact', async (ctx) => {
    const input = randomBytes(3 * 1024 * 1024 + 17);
    const r = await w(ctx).transport.run(['cat'], input);
    assert.is(r.code, 0);
    assert.is(sha(r.stdout), sha(input));
    const big = await w(ctx).transport.run(['head', '-c', String(20 * 1024 * 1024), '/dev/zero']);
    assert.is(big.stdout.length, 20 * 1024 * 1024);
  });

  t('kill stops a running program promptly without a success status', async (ctx) => {
    const p = w(ctx).transport.exec(['sleep', '30']);
    p.stdout.resume();
    p.stderr.resume();
    const started = Date.now();
    setTimeout(() => p.kill(), 200);
    const s = await p.done;
    assert.ok(Date.now() - started < 10_000, 'kill took too long');
    assert.is.not(s.code, 0);
  });

  t('writeFile then readStream round-trips bytes and mode; no temp file is left', async (ctx) => {
    const { transport, dir } = w(ctx);
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const file = path.join(dir, 'a.bin');
    await transport.writeFile(file, Readable.from([data.subarray(0, 1000), data.subarray(1000)]), 0o640);
    assert.is(sha(await readFile(file)), sha(data));
    assert.is((await lstat(file)).mode & 0o777, 0o640);
    assert.is(sha(await readAll(transport.readStream(file))), sha(data));
    await transport.writeFile(file, 'replaced');
    assert.is(await readFile(file, 'utf8'), 'replaced');
    assert.equal(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
    );
  });

  t('writeFile whose source fails leaves the old file and no temp file', async (ctx) => {
    const { transport, dir } = w(ctx);
    const file = path.join(dir, 'keep.txt');
    await transport.writeFile(file, 'old');
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(100_000, 1);
      throw new Error('source broke');
    }
    await rejects(() => transport.writeFile(file, Readable.from(failing())), /source broke/);
    assert.is(await readFile(file, 'utf8'), 'old');
    assert.equal(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
    );
  });

  t('readStream of a missing file fails with NOT_FOUND', async (ctx) => {
    const { transport, dir } = w(ctx);
    try {
      await readAll(transport.readStream(path.join(dir, 'nope')));
      assert.unreachable('should fail');
    } catch (err) {
      assert.instance(err, PgbkError);
      assert.is((err as PgbkError).code, 'NOT_FOUND');
    }
  });

  t('stat and list report type, size, mode and mtime like lstat', async (ctx) => {
    const { transport, dir, share } = w(ctx);
    const sub = path.join(dir, 'tree');
    await mkdir(sub);
    await writeFile(path.join(sub, 'f1'), 'hello');
    await mkdir(path.join(sub, 'd1'));
    await symlink('/nonexistent-target', path.join(sub, 'l1'));
    await share(sub);
    const st = await transport.stat(path.join(sub, 'f1'));
    const real = await lstat(path.join(sub, 'f1'));
    assert.ok(st !== undefined);
    assert.is(st.type, 'file');
    assert.is(st.size, 5);
    assert.is(st.mode, real.mode & 0o7777);
    assert.ok(Math.abs(st.mtimeMs - real.mtimeMs) < 1, `mtime ${st.mtimeMs} vs ${real.mtimeMs}`);
    assert.is(await transport.stat(path.join(sub, 'missing')), undefined);
    assert.is((await transport.stat(path.join(sub, 'l1')))?.type, 'symlink');
    const entries = await transport.list(sub);
    assert.equal(
      entries.map((e) => [e.name, e.type]),
      [
        ['d1', 'dir'],
        ['f1', 'file'],
        ['l1', 'symlink'],
      ],
    );
    await rejects(
      () => transport.list(path.join(sub, 'missing')),
      (e: unknown) => (e as PgbkError).code === 'NOT_FOUND',
    );
  });

  t('realPath resolves links, keeps a missing tail, and refuses a dangling link on the way', async (ctx) => {
    const { transport, dir, share } = w(ctx);
    const sub = path.join(dir, 'rp');
    await mkdir(path.join(sub, 'real', 'inner'), { recursive: true });
    await symlink(path.join(sub, 'real'), path.join(sub, 'link'));
    await symlink(path.join(sub, 'nowhere'), path.join(sub, 'dangling'));
    await share(sub);
    const real = await realpath(sub);
    assert.is(await transport.realPath(path.join(sub, 'link', 'inner')), path.join(real, 'real', 'inner'));
    assert.is(await transport.realPath(path.join(sub, 'link', 'new', 'deeper')), path.join(real, 'real', 'new', 'deeper'));
    assert.is(await transport.realPath('/'), '/');
    await rejects(
      () => transport.realPath(path.join(sub, 'dangling', 'x')),
      (e: unknown) => (e as PgbkError).code === 'USAGE' && /dangling is a symbolic link to a missing target/.test((e as Error).message),
    );
  });

  t('mkdir, symlink, chownLike, remove and userId do what their local counterparts do', async (ctx) => {
    const { transport, dir, share } = w(ctx);
    const sub = path.join(dir, 'ops');
    await mkdir(sub);
    await share(sub);
    const deep = path.join(sub, 'a', 'b');
    await transport.mkdir(deep, 0o700);
    assert.is((await lstat(deep)).mode & 0o777, 0o700);
    // Only the last directory gets the mode, as `mkdir -p -m`: a parent made 0700 by root would
    // keep the restored server's owner out of its own data directory (found by the qa helper).
    assert.ok(((await lstat(path.join(sub, 'a'))).mode & 0o011) === 0o011, 'a parent mkdir made can be traversed by others');
    await transport.mkdir(deep, 0o750); // it exists: only the mode changes
    assert.is((await lstat(deep)).mode & 0o777, 0o750);
    const f = path.join(deep, 'f');
    await transport.writeFile(f, 'x');
    assert.is((await lstat(f)).uid, await transport.userId(), 'userId is who writes files there');
    const link = path.join(sub, 'l');
    await transport.symlink(path.join(sub, 'a'), link);
    assert.is(await readlink(link), path.join(sub, 'a'));
    await transport.symlink(deep, link); // replaced, not followed
    assert.is(await readlink(link), deep);
    await transport.chownLike(f, [path.join(sub, 'a')], true);
    assert.is((await lstat(deep)).uid, (await lstat(f)).uid);
    await transport.remove([path.join(sub, 'a'), link, path.join(sub, 'never-was')]);
    assert.equal(await readdir(sub), []);
  });

  t.run();
}
