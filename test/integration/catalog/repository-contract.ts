/**
 * The repository contract (DESIGN.md §4, hono's router tests are the model): every driver of
 * src/catalog/repository.ts runs exactly these tests — posix now, s3 against radosgw next. A
 * driver's *.test.ts calls `repositoryContract(name, makeDriver)`; each test works under its own
 * key prefix of one repository, so the suite also runs against a shared bucket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LockHolder, Repository } from '../../../src/catalog/repository.js';
import { mapLimited } from '../../../src/lib/map-limited.js';
import type { DriverSpec } from './drivers.js';

export interface RepositoryWorld {
  readonly repo: Repository;
  /** How another process opens the same repository (lock tests). */
  readonly spec: DriverSpec;
  cleanup(): Promise<void>;
}

type Ctx = { w?: RepositoryWorld; n: number };

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** uvu has no async throws: expect `fn` to reject with a message matching `re`. */
export async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable('expected a rejection');
}

function holderNamed(command: string): LockHolder {
  return { id: randomBytes(8).toString('hex'), pid: process.pid, host: os.hostname(), command, since: new Date().toISOString() };
}

interface Child {
  readonly proc: ChildProcess;
  readonly outcome: Promise<{ acquired: boolean; holder: LockHolder | 'unreadable' }>;
  readonly exited: Promise<void>;
}

const CHILD = fileURLToPath(new URL('./lock-child.js', import.meta.url));

export function spawnHolder(spec: DriverSpec, key: string, ttlMs: number, holdMs: number): Child {
  const proc = spawn(process.execPath, [CHILD, JSON.stringify(spec), key, String(ttlMs), String(holdMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const outcome = new Promise<{ acquired: boolean; holder: LockHolder | 'unreadable' }>((resolve, reject) => {
    let text = '';
    proc.stdout!.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(text.slice(0, nl)) as { acquired: boolean; holder: LockHolder | 'unreadable' });
    });
    proc.once('exit', (code) => reject(new Error(`lock child exited (${String(code)}) before answering`)));
  });
  return { proc, outcome, exited };
}

export async function stop(children: readonly Child[]): Promise<void> {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null && c.proc.pid !== undefined) process.kill(c.proc.pid, 'SIGKILL');
  }
  await Promise.all(children.map((c) => c.exited));
}

export function repositoryContract(name: string, makeDriver: () => Promise<RepositoryWorld>): void {
  const t = suite<Ctx>(`repository contract: ${name}`, { n: 0 });
  t.before(async (ctx) => {
    ctx.w = await makeDriver();
  });
  t.after(async (ctx) => {
    await ctx.w?.cleanup();
  });
  /** The repository and a fresh key prefix for one test. */
  const world = (ctx: Ctx): { repo: Repository; spec: DriverSpec; p: string } => {
    if (ctx.w === undefined) throw new Error('setup failed');
    ctx.n++;
    return { repo: ctx.w.repo, spec: ctx.w.spec, p: `t${ctx.n}-${randomBytes(3).toString('hex')}/` };
  };

  t('absence is undefined: get, read, stat, readLock of a missing key', async (ctx) => {
    const { repo, p } = world(ctx);
    assert.is(await repo.get(`${p}nothing`), undefined);
    assert.is(await repo.read(`${p}nothing`), undefined);
    assert.is(await repo.read(`${p}a/b/c`, { offset: 1, length: 2 }), undefined);
    assert.is(await repo.stat(`${p}nothing`), undefined);
    assert.is(await repo.readLock(`${p}lock`), undefined);
    assert.equal(await collect(repo.list(p, { recursive: true })), []);
  });

  t('put then get and stat: the bytes, their size, a current mtime; a "directory" is no object', async (ctx) => {
    const { repo, p } = world(ctx);
    const data = randomBytes(70_001);
    const before = Date.now();
    await repo.put(`${p}deep/er/obj.bin`, data);
    assert.ok((await repo.get(`${p}deep/er/obj.bin`))!.equals(data));
    const st = await repo.stat(`${p}deep/er/obj.bin`);
    assert.is(st?.size, 70_001);
    assert.ok(Math.abs(st!.mtime.getTime() - before) < 60_000, `mtime ${st!.mtime.toISOString()}`);
    assert.is(await repo.stat(`${p}deep/er`), undefined);
    assert.is(await repo.get(`${p}deep`), undefined);
    await repo.put(`${p}text.json`, '{"a":1}\n');
    assert.is((await repo.get(`${p}text.json`))!.toString('utf8'), '{"a":1}\n');
  });

  t(
    'get into a reused buffer: a view of it when the object fits, a Buffer of its own when not; absent and "directories" are undefined; an empty object is empty',
    async (ctx) => {
      const { repo, p } = world(ctx);
      const into = Buffer.alloc(300_000, 0xee);
      const a = randomBytes(200_003);
      const b = randomBytes(120_000);
      await repo.put(`${p}seg/a`, a);
      await repo.put(`${p}seg/b`, b);
      await repo.put(`${p}seg/big`, randomBytes(300_001));
      await repo.put(`${p}seg/empty`, Buffer.alloc(0));
      const gotA = (await repo.get(`${p}seg/a`, { into }))!;
      assert.ok(gotA.equals(a));
      assert.is(gotA.buffer, into.buffer, 'read into the buffer given');
      assert.is(into[200_003], 0xee, 'nothing written past the object');
      // The same buffer for the next object: the caller is done with the first.
      const gotB = (await repo.get(`${p}seg/b`, { into }))!;
      assert.ok(gotB.equals(b));
      assert.is(gotB.buffer, into.buffer);
      const big = (await repo.get(`${p}seg/big`, { into }))!;
      assert.is(big.length, 300_001, 'too large for the buffer: read whole all the same');
      assert.is.not(big.buffer, into.buffer);
      assert.ok(into.subarray(0, 120_000).equals(b), 'a get that does not fit leaves the buffer alone');
      assert.is((await repo.get(`${p}seg/empty`, { into }))!.length, 0);
      assert.is(await repo.get(`${p}seg/nothing`, { into }), undefined);
      assert.is(await repo.get(`${p}seg`, { into }), undefined);
    },
  );

  t('put replaces atomically: readers during 8 puts see the old bytes or the new, never a mix or a prefix', async (ctx) => {
    const { repo, p } = world(ctx);
    const key = `${p}record`;
    const a = Buffer.alloc(4 * 1024 * 1024, 'a');
    const b = Buffer.alloc(4 * 1024 * 1024, 'b');
    await repo.put(key, a);
    let done = false;
    const writing = (async (): Promise<void> => {
      for (let i = 0; i < 8; i++) await repo.put(key, i % 2 === 0 ? b : a);
    })().finally(() => {
      done = true;
    });
    let reads = 0;
    const reader = async (): Promise<void> => {
      while (!done) {
        const got = await repo.get(key);
        assert.ok(got !== undefined && (got.equals(a) || got.equals(b)), `torn read of ${got?.length} bytes`);
        reads++;
      }
    };
    const lister = async (): Promise<void> => {
      while (!done) assert.equal(await collect(repo.listNames(p, { recursive: true })), [{ kind: 'object', key }], 'a temp object was listed');
    };
    await Promise.all([writing, reader(), reader(), reader(), lister()]);
    assert.ok(reads > 0);
    assert.ok((await repo.get(key))!.equals(a));
  });

  t('putIfAbsent: created once, then exists without touching the stored bytes', async (ctx) => {
    const { repo, p } = world(ctx);
    const key = `${p}wal/0000000100000000/000000010000000000000001.zst`;
    assert.is(await repo.putIfAbsent(key, 'first'), 'created');
    assert.is(await repo.putIfAbsent(key, 'second'), 'exists');
    assert.is(await repo.putIfAbsent(key, 'first'), 'exists');
    assert.is((await repo.get(key))!.toString(), 'first');
  });

  t('putIfAbsent: of 8 concurrent racers with different bytes exactly one creates, and its bytes are stored', async (ctx) => {
    const { repo, p } = world(ctx);
    for (let round = 0; round < 5; round++) {
      const key = `${p}race-${round}`;
      const bodies = Array.from({ length: 8 }, () => randomBytes(256 * 1024));
      const outcomes = await Promise.all(bodies.map((body) => repo.putIfAbsent(key, body)));
      const winners = outcomes.flatMap((o, i) => (o === 'created' ? [i] : []));
      assert.is(winners.length, 1, `outcomes ${outcomes.join(',')}`);
      assert.ok((await repo.get(key))!.equals(bodies[winners[0]!]!));
    }
  });

  t('putIfAbsent records the sha256 given; stat returns it, and a losing put leaves it unchanged', async (ctx) => {
    const { repo, p } = world(ctx);
    const key = `${p}wal/0000000100000000/000000010000000000000002`;
    const data = randomBytes(4096);
    assert.is(await repo.putIfAbsent(key, data, { sha256: sha(data) }), 'created');
    const other = randomBytes(4096);
    assert.is(await repo.putIfAbsent(key, other, { sha256: sha(other) }), 'exists');
    assert.is((await repo.stat(key))?.sha256, sha(data));
  });

  t('put and putIfAbsent take pieces (a zstd frame as the encoder left it): stored one after another, empty ones too', async (ctx) => {
    const { repo, p } = world(ctx);
    // 3 MiB of views into one buffer, an empty piece, and pieces of their own: what writev gets.
    const big = randomBytes(3 * 1024 * 1024 + 7);
    const parts = [Buffer.from('head'), big.subarray(5), Buffer.alloc(0), big.subarray(0, 5), Buffer.from([1, 2, 3, 4])];
    const whole = Buffer.concat(parts);
    const key = `${p}wal/0000000100000000/000000010000000000000003.zst`;
    assert.is(await repo.putIfAbsent(key, parts, { sha256: sha(whole) }), 'created');
    assert.ok((await repo.get(key))!.equals(whole), 'putIfAbsent stored the pieces in order');
    assert.is((await repo.stat(key))?.size, whole.length);
    assert.is((await repo.stat(key))?.sha256, sha(whole));
    assert.is(await repo.putIfAbsent(key, [Buffer.from('other')]), 'exists');
    assert.ok((await repo.get(key))!.equals(whole), 'the losing put left the stored bytes');
    await repo.put(`${p}pieces`, [Buffer.from('a'), Buffer.from('bc')]);
    assert.is((await repo.get(`${p}pieces`))!.toString(), 'abc');
  });

  t('streaming write: nothing visible (nor listed) until commit, then all of it; size and sha256 reported', async (ctx) => {
    const { repo, p } = world(ctx);
    const key = `${p}backups/20260101T000000Z/base.tar.zst`;
    const chunks = Array.from({ length: 40 }, () => randomBytes(256 * 1024 + 13));
    const whole = Buffer.concat(chunks);
    const w = await repo.openWrite(key);
    await pipeline(Readable.from(chunks), w.stream);
    assert.is(await repo.stat(key), undefined);
    assert.equal(await collect(repo.list(p, { recursive: true })), []);
    const unfinished = await repo.openWrite(`${p}x`);
    await rejects(() => unfinished.commit(), /not finished/);
    await unfinished.abort();
    const result = await w.commit();
    assert.equal(result, { outcome: 'created', size: whole.length, sha256: sha(whole) });
    assert.ok((await repo.get(key))!.equals(whole));
    await rejects(() => w.commit(), /already committed/);
  });

  t('streaming write: abort (also after a failed pipeline) leaves nothing at the key or in listings', async (ctx) => {
    const { repo, p } = world(ctx);
    const w1 = await repo.openWrite(`${p}dir/one`);
    await pipeline(Readable.from([randomBytes(1024)]), w1.stream);
    await w1.abort();
    await w1.abort();
    const w2 = await repo.openWrite(`${p}dir/two`);
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(1024);
      throw new Error('source broke');
    }
    await rejects(() => pipeline(Readable.from(failing()), w2.stream), /source broke/);
    await w2.abort();
    assert.is(await repo.stat(`${p}dir/one`), undefined);
    assert.is(await repo.stat(`${p}dir/two`), undefined);
    assert.equal(await collect(repo.list(p, { recursive: true })), []);
  });

  t('streaming write: ifAbsent — the second commit answers exists and the first bytes stay; plain commit replaces', async (ctx) => {
    const { repo, p } = world(ctx);
    const key = `${p}chunks/ab/abcdef`;
    const [w1, w2] = [await repo.openWrite(key, { ifAbsent: true }), await repo.openWrite(key, { ifAbsent: true })];
    await pipeline(Readable.from([Buffer.from('one')]), w1.stream);
    await pipeline(Readable.from([Buffer.from('two')]), w2.stream);
    assert.is((await w1.commit()).outcome, 'created');
    assert.is((await w2.commit()).outcome, 'exists');
    assert.is((await repo.get(key))!.toString(), 'one');
    const w3 = await repo.openWrite(key);
    await pipeline(Readable.from([Buffer.from('three')]), w3.stream);
    assert.is((await w3.commit()).outcome, 'created');
    assert.is((await repo.get(key))!.toString(), 'three');
    assert.equal(
      (await collect(repo.listNames(p, { recursive: true }))).map((e) => e.key),
      [key],
    );
  });

  t('ranged reads: offset, length, to the end, past the end, zero length', async (ctx) => {
    const { repo, p } = world(ctx);
    const key = `${p}tar`;
    const data = randomBytes(3 * 1024 * 1024 + 5);
    await repo.put(key, data);
    const range = async (offset?: number, length?: number): Promise<Buffer> => {
      const r = await repo.read(key, { ...(offset === undefined ? {} : { offset }), ...(length === undefined ? {} : { length }) });
      return readAll(r!);
    };
    assert.ok((await readAll((await repo.read(key))!)).equals(data));
    assert.ok((await range(1000, 5000)).equals(data.subarray(1000, 6000)));
    assert.ok((await range(2 * 1024 * 1024)).equals(data.subarray(2 * 1024 * 1024)));
    assert.ok((await range(undefined, 10)).equals(data.subarray(0, 10)));
    assert.ok((await range(data.length - 3, 100)).equals(data.subarray(data.length - 3)));
    assert.is((await range(data.length + 10, 5)).length, 0);
    assert.is((await range(7, 0)).length, 0);
  });

  t('list: 1,500 keys under several prefixes, recursive, in byte order with sizes; pagination loses none', async (ctx) => {
    const { repo, p } = world(ctx);
    const keys: string[] = [];
    for (let i = 0; i < 1500; i++) keys.push(`${p}wal/${String(i % 3).padStart(16, '0')}/${i.toString(16).toUpperCase().padStart(24, '0')}`);
    await mapLimited(keys, 32, (k) => repo.putIfAbsent(k, k));
    const listed = await collect(repo.list(p, { recursive: true }));
    const sorted = [...keys].sort();
    assert.equal(
      listed.map((e) => e.key),
      sorted,
    );
    for (const e of listed) {
      assert.is(e.kind, 'object');
      if (e.kind === 'object') assert.is(e.size, Buffer.byteLength(e.key));
    }
    const names = await collect(repo.listNames(`${p}wal/0000000000000001/`, { recursive: true }));
    assert.equal(
      names.map((e) => e.key),
      sorted.filter((k) => k.startsWith(`${p}wal/0000000000000001/`)),
    );
    assert.equal(
      await collect(repo.list(`${p}wal/`)),
      [0, 1, 2].map((d) => ({ kind: 'prefix', key: `${p}wal/${String(d).padStart(16, '0')}/` })),
    );
  });

  t('list: one level gives objects and common prefixes; partial-name prefixes; byte order puts "." before "/"', async (ctx) => {
    const { repo, p } = world(ctx);
    for (const k of ['a/1', 'a/2', 'a/b/3', 'a.c', 'ab/4', 'b', 'x/y/z']) await repo.put(`${p}${k}`, k);
    const keys = async (prefix: string, recursive: boolean): Promise<string[]> =>
      (await collect(repo.listNames(`${p}${prefix}`, { recursive }))).map((e) => `${e.kind === 'prefix' ? 'P:' : ''}${e.key.slice(p.length)}`);
    assert.equal(await keys('', true), ['a.c', 'a/1', 'a/2', 'a/b/3', 'ab/4', 'b', 'x/y/z']);
    assert.equal(await keys('', false), ['a.c', 'P:a/', 'P:ab/', 'b', 'P:x/']);
    assert.equal(await keys('a/', false), ['a/1', 'a/2', 'P:a/b/']);
    assert.equal(await keys('a/', true), ['a/1', 'a/2', 'a/b/3']);
    assert.equal(await keys('a', true), ['a.c', 'a/1', 'a/2', 'a/b/3', 'ab/4']);
    assert.equal(await keys('a', false), ['a.c', 'P:a/', 'P:ab/']);
    assert.equal(await keys('nothing/', true), []);
    const withMeta = await collect(repo.list(`${p}a/`));
    assert.equal(
      withMeta.map((e) => (e.kind === 'object' ? [e.key.slice(p.length), e.size] : [e.key.slice(p.length)])),
      [['a/1', 3], ['a/2', 3], ['a/b/']],
    );
  });

  t('delete: a batch with missing keys succeeds, removes exactly those keys, and is idempotent', async (ctx) => {
    const { repo, p } = world(ctx);
    const keys = Array.from({ length: 30 }, (_, i) => `${p}d${i % 2}/k${i}`);
    await mapLimited(keys, 8, (k) => repo.put(k, k));
    const doomed = [...keys.slice(0, 20), `${p}missing`, `${p}d9/missing`];
    await repo.delete(doomed, { removeEmptyParents: true });
    await repo.delete(doomed);
    await repo.delete([]);
    for (const k of keys.slice(0, 20)) assert.is(await repo.stat(k), undefined);
    assert.equal(
      (await collect(repo.listNames(p, { recursive: true }))).map((e) => e.key),
      keys.slice(20).sort(),
    );
  });

  t('deleteTree: everything under the prefix goes, nothing beside it; idempotent', async (ctx) => {
    const { repo, p } = world(ctx);
    for (const k of ['bk/1/backup.json', 'bk/1/data/a', 'bk/1/data/b/c', 'bk/1x', 'bk/10/backup.json']) await repo.put(`${p}${k}`, k);
    await repo.deleteTree(`${p}bk/1/`);
    await repo.deleteTree(`${p}bk/1/`);
    await repo.deleteTree(`${p}never/`);
    assert.equal(
      (await collect(repo.listNames(p, { recursive: true }))).map((e) => e.key.slice(p.length)),
      ['bk/10/backup.json', 'bk/1x'],
    );
    await rejects(() => repo.deleteTree(`${p}bk/1x`), /ending in '\/'/);
  });

  t('keys are checked: absolute, "..", ".", dot-names, empty segments and reserved names are refused', async (ctx) => {
    const { repo, p } = world(ctx);
    for (const bad of ['/etc/passwd', `${p}../x`, `${p}./x`, `${p}.hidden`, `${p}a//b`, `${p}a/`, '', `${p}SHA256SUMS`]) {
      await rejects(() => repo.put(bad, 'x'), /invalid repository key/);
    }
    await rejects(async () => collect(repo.list('../')), /invalid repository prefix/);
  });

  t('lock: exclusive, names its holder, release is idempotent and never removes another holder', async (ctx) => {
    const { repo, p } = world(ctx);
    const key = `${p}main/lock`;
    const a = holderNamed('apply');
    const b = holderNamed('backup');
    const first = await repo.tryLock(key, a, { ttlMs: 30_000 });
    assert.ok(first.acquired);
    const second = await repo.tryLock(key, b, { ttlMs: 30_000 });
    assert.equal(second, { acquired: false, holder: a });
    assert.equal(await repo.readLock(key), a);
    if (!first.acquired) return;
    await first.lease.renew();
    await first.lease.release();
    await first.lease.release();
    assert.is(await repo.readLock(key), undefined);
    const third = await repo.tryLock(key, b, { ttlMs: 30_000 });
    assert.ok(third.acquired);
    await first.lease.release(); // a's stale handle must not remove b's lock
    assert.equal(await repo.readLock(key), b);
    await rejects(() => first.lease.renew(), /lock/);
    if (third.acquired) await third.lease.release();
  });

  t('lock: of 3 processes racing for it exactly one acquires, the others are told who holds it', async (ctx) => {
    const { repo, spec, p } = world(ctx);
    const key = `${p}main/lock`;
    const children = [0, 1, 2].map(() => spawnHolder(spec, key, 30_000, 60_000));
    try {
      const outcomes = await Promise.all(children.map((c) => c.outcome));
      const winners = outcomes.filter((o) => o.acquired);
      assert.is(winners.length, 1, JSON.stringify(outcomes));
      const winner = winners[0]!.holder as LockHolder;
      for (const o of outcomes) if (!o.acquired) assert.equal(o.holder, winner);
      assert.equal(await repo.readLock(key), winner);
      assert.is((await repo.tryLock(key, holderNamed('parent'), { ttlMs: 30_000 })).acquired, false);
    } finally {
      await stop(children);
    }
  });

  t('lock: a holder that died is taken over (posix: dead pid; object stores: after its ttl)', async (ctx) => {
    const { repo, spec, p } = world(ctx);
    const key = `${p}main/lock`;
    const ttlMs = 2000;
    const child = spawnHolder(spec, key, ttlMs, 60_000);
    try {
      const o = await child.outcome;
      assert.ok(o.acquired);
      const me = holderNamed('apply');
      const refused = await repo.tryLock(key, me, { ttlMs });
      assert.is(refused.acquired, false);
      assert.is(!refused.acquired && refused.holder !== 'unreadable' ? refused.holder.pid : -1, child.proc.pid);
      await stop([child]);
      const deadline = Date.now() + ttlMs * 2 + 10_000;
      let attempt = await repo.tryLock(key, me, { ttlMs });
      while (!attempt.acquired && Date.now() < deadline) {
        await sleep(200);
        attempt = await repo.tryLock(key, me, { ttlMs });
      }
      assert.ok(attempt.acquired, 'the dead holder was not taken over');
      assert.equal(await repo.readLock(key), me);
      if (attempt.acquired) await attempt.lease.release();
    } finally {
      await stop([child]);
    }
  });

  t('lock: a holder on this host whose process died is taken over at once, long before its ttl; a live one is not', async (ctx) => {
    const { repo, spec, p } = world(ctx);
    const key = `${p}main/lock`;
    const ttlMs = 10 * 60_000;
    const child = spawnHolder(spec, key, ttlMs, 120_000);
    try {
      assert.ok((await child.outcome).acquired);
      const me = holderNamed('apply');
      assert.is((await repo.tryLock(key, me, { ttlMs })).acquired, false, 'a live holder was taken over');
      await stop([child]);
      const attempt = await repo.tryLock(key, me, { ttlMs });
      assert.ok(attempt.acquired, 'the dead holder on this host was not taken over');
      assert.equal(await repo.readLock(key), me);
      if (attempt.acquired) await attempt.lease.release();
    } finally {
      await stop([child]);
    }
  });

  t.run();
}
