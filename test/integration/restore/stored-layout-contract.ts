/**
 * The stored-backup layout contract (DESIGN.md §4; test/integration/catalog/repository-contract.ts
 * is the model): every StoredSource implementation (src/catalog/stored-source.ts: a local catalog's
 * backup directory, objects in an s3:// catalog) runs exactly these tests, through the StoredLayout
 * of pg_basebackup's tars (src/restore/stored-layout.ts) that restore and verify read, and the
 * `ssh` method's file list (src/backup/ssh/stored-file-list.ts) that the next backup reads. A world stores files for a backup id; each test uses its own backup id.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatManifest, parseManifest } from '../../../src/backup/ssh/incremental.js';
import { readFileList } from '../../../src/backup/ssh/stored-file-list.js';
import { PgbkError } from '../../../src/errors.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import type { DoneBackup } from '../../../src/model/types.js';
import { localHost } from '../../../src/restore/host.js';
import { storedLayout } from '../../../src/restore/stored-layout.js';
import { storedSource, type PrefetchOptions, type StoredSource } from '../../../src/catalog/stored-source.js';

const run = promisify(execFile);

export const SERVER = 'main';

export interface StoredWorld {
  /** The catalog as configured (what storedSource takes). */
  readonly catalog: string;
  /** Store `bytes` as file `name` of backup `id` of SERVER. */
  put(id: string, name: string, bytes: Buffer): Promise<void>;
  /** Remove file `name` of backup `id` (as retention or a damaged store would). */
  remove(id: string, name: string): Promise<void>;
  cleanup(): Promise<void>;
}

type Ctx = { w?: StoredWorld; n: number; tmp?: string };

const MiB = 1024 * 1024;

/** A DONE basebackup record of `id` with these checksums (only what the layout reads matters). */
export function doneBackup(id: string, checksums: Record<string, string>, method: 'basebackup' | 'ssh' = 'basebackup'): DoneBackup {
  return {
    formatVersion: 1,
    id,
    server: SERVER,
    slot: '2026-01-01T00:00:00.000Z',
    method,
    pgVersion: 150000,
    systemIdentifier: '7000000000000000001',
    beginTime: '2026-01-01T00:00:00.000Z',
    compression: 'none',
    keep: 'none',
    status: 'DONE',
    timeline: 1,
    beginLsn: '0/2000028',
    endLsn: '0/2000100',
    beginWal: '000000010000000000000002',
    endWal: '000000010000000000000002',
    endTime: '2026-01-01T00:00:01.000Z',
    sizes: { data: 0, stored: 0 },
    checksums,
  };
}

/** uvu has no async throws: expect `fn` to reject with a PgbkError whose message matches `re`. */
export async function refuses(fn: () => Promise<unknown>, re: RegExp): Promise<PgbkError> {
  try {
    await fn();
  } catch (err) {
    assert.instance(err, PgbkError, `not a PgbkError: ${String(err)}`);
    assert.match((err as Error).message, re);
    return err as PgbkError;
  }
  assert.unreachable(`expected a rejection matching ${String(re)}`);
  throw new Error('unreachable');
}

async function bytesOf(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

/** A real tar of `files` (in this order, names without "./", as pg_basebackup writes them). */
export async function makeTar(tmp: string, files: Readonly<Record<string, Buffer>>, zstd: boolean): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmp, 'src-'));
  for (const [rel, bytes] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), bytes);
  }
  const tar = path.join(tmp, `${path.basename(dir)}.tar`);
  await run('tar', ['-C', dir, '-cf', tar, ...Object.keys(files)]);
  if (!zstd) return readFile(tar);
  await run('zstd', ['-q', '-f', tar, '-o', `${tar}.zst`]);
  return readFile(`${tar}.zst`);
}

/** Every file under `dir` (relative path → bytes). */
export async function treeOf(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath ?? e.path, e.name);
    out[path.relative(dir, full)] = await readFile(full);
  }
  return out;
}

function assertSameTree(got: Record<string, Buffer>, want: Readonly<Record<string, Buffer>>, what: string): void {
  assert.equal(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: files`);
  for (const [rel, bytes] of Object.entries(want)) assert.ok(got[rel]!.equals(bytes), `${what}: ${rel} differs`);
}

export function storedLayoutContract(name: string, makeWorld: () => Promise<StoredWorld>): void {
  const t = suite<Ctx>(`stored layout contract: ${name}`, { n: 0 });

  t.before(async (ctx) => {
    ctx.w = await makeWorld();
    ctx.tmp = await mkdtemp(path.join(os.tmpdir(), 'pgbk-layout-contract-'));
  });
  t.after(async (ctx) => {
    await ctx.w?.cleanup();
    if (ctx.tmp !== undefined) await rm(ctx.tmp, { recursive: true, force: true });
  });

  /** A fresh backup id for each test (the world may be shared between tests). */
  const nextId = (ctx: Ctx): string => `20260101T${String(++ctx.n).padStart(6, '0')}Z`;
  const W = (ctx: Ctx): StoredWorld => ctx.w!;
  const source = (ctx: Ctx, id: string, prefetch: PrefetchOptions = {}): Promise<StoredSource> => storedSource(W(ctx).catalog, SERVER, id, prefetch);

  t('names, size and open: every byte, in order, including an object read as several prefetched ranges', async (ctx) => {
    const id = nextId(ctx);
    const files: Record<string, Buffer> = {
      'base.tar': randomBytes(10_000),
      // Past the default 8 MiB range: two ranged GETs from object storage, ten with 1 MiB ranges.
      'big.bin': randomBytes(9 * MiB + 12_345),
      'empty.bin': Buffer.alloc(0),
      backup_manifest: Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n'),
    };
    for (const [n, b] of Object.entries(files)) await W(ctx).put(id, n, b);
    const src = await source(ctx, id);
    assert.equal((await src.names()).sort(), Object.keys(files).sort());
    for (const [n, b] of Object.entries(files)) {
      assert.is(await src.size(n), b.length, `size of ${n}`);
      assert.ok((await bytesOf(src.open(n))).equals(b), `bytes of ${n}`);
      assert.match(src.where(n), new RegExp(`${id}/${n}$`));
    }
    // Small ranges, few in flight: the order of the ranges is the order of the bytes.
    const small = await source(ctx, id, { chunkBytes: MiB, ahead: 3 });
    assert.ok((await bytesOf(small.open('big.bin'))).equals(files['big.bin']!), 'big.bin in 1 MiB ranges');
  });

  t('localFile: the stored bytes in a local file; dispose removes a temp copy and never the stored file', async (ctx) => {
    const id = nextId(ctx);
    const bytes = randomBytes(4096);
    await W(ctx).put(id, 'backup_manifest', bytes);
    const src = await source(ctx, id);
    const f = await src.localFile('backup_manifest');
    assert.ok((await readFile(f.path)).equals(bytes));
    const inPlace = f.path === src.where('backup_manifest');
    await f.dispose();
    if (!inPlace) {
      assert.not.ok(existsSync(f.path), `${f.path} left behind`);
      assert.not.ok(existsSync(path.dirname(f.path)), `${path.dirname(f.path)} left behind`);
    }
    assert.ok((await bytesOf(src.open('backup_manifest'))).equals(bytes), 'the stored file is still there');
  });

  t('a missing object: size and open fail naming it', async (ctx) => {
    const id = nextId(ctx);
    await W(ctx).put(id, 'base.tar', Buffer.from('x'));
    const src = await source(ctx, id);
    const named = new RegExp(`${id}/16384\\.tar`);
    const e1 = await refuses(() => src.size('16384.tar'), named);
    const e2 = await refuses(() => bytesOf(src.open('16384.tar')), named);
    assert.is(e1.code, 'CATALOG');
    assert.is(e2.code, 'CATALOG');
  });

  t('opening the layout refuses a recorded-but-missing tar, an unrecorded tar and a backup without base.tar, naming them', async (ctx) => {
    const base = randomBytes(2048);
    const manifest = Buffer.from('manifest\n');
    const sums = { 'base.tar': sha256Hex(base), backup_manifest: sha256Hex(manifest) };

    const a = nextId(ctx);
    await W(ctx).put(a, 'base.tar', base);
    await W(ctx).put(a, 'backup_manifest', manifest);
    const e = await refuses(
      async () => storedLayout(await source(ctx, a), doneBackup(a, { ...sums, '16384.tar': 'ab'.repeat(32) })),
      /16384\.tar is recorded but missing/,
    );
    assert.match(e.path ?? '', new RegExp(`${a}/16384\\.tar$`));

    const b = nextId(ctx);
    await W(ctx).put(b, 'base.tar', base);
    await W(ctx).put(b, '16385.tar', base);
    await W(ctx).put(b, 'backup_manifest', manifest);
    await refuses(async () => storedLayout(await source(ctx, b), doneBackup(b, sums)), /16385\.tar has no recorded checksum/);

    const c = nextId(ctx);
    await W(ctx).put(c, 'backup_manifest', manifest);
    await refuses(async () => storedLayout(await source(ctx, c), doneBackup(c, { backup_manifest: sums.backup_manifest })), /has no base\.tar/);
  });

  t('a backup_manifest that does not match its sha256, or is missing, is refused before anything is written', async (ctx) => {
    // A private TMPDIR: a temp copy of the manifest left behind would show here.
    const tmp = await mkdtemp(path.join(ctx.tmp!, 'tmpdir-'));
    const saved = process.env['TMPDIR'];
    process.env['TMPDIR'] = tmp;
    try {
      const base = randomBytes(2048);
      const manifest = Buffer.from('the manifest as recorded\n');
      const a = nextId(ctx);
      await W(ctx).put(a, 'base.tar', base);
      await W(ctx).put(a, 'backup_manifest', Buffer.from('the manifest, changed\n'));
      const sums = { 'base.tar': sha256Hex(base), backup_manifest: sha256Hex(manifest) };
      const e = await refuses(
        async () => storedLayout(await source(ctx, a), doneBackup(a, sums)),
        /backup_manifest is missing or does not match its recorded sha256/,
      );
      assert.match(e.path ?? '', new RegExp(`${a}/backup_manifest$`));

      const b = nextId(ctx);
      await W(ctx).put(b, 'base.tar', base);
      await refuses(async () => storedLayout(await source(ctx, b), doneBackup(b, sums)), /backup_manifest is missing or does not match/);
      assert.equal(await readdir(tmp), [], 'nothing left in TMPDIR');
    } finally {
      if (saved === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = saved;
    }
  });

  t('unpack: real tars (zstd and plain) into a directory on this host, sha256 checked; readMap; a flipped byte refused', async (ctx) => {
    const tmp = ctx.tmp!;
    const data: Record<string, Buffer> = {
      PG_VERSION: Buffer.from('15\n'),
      tablespace_map: Buffer.from('16384 /srv/ts1\n'),
      'base/1/1259': randomBytes(300_000),
      'global/pg_control': randomBytes(8192),
    };
    const ts: Record<string, Buffer> = { 'PG_15_202209061/5/16390': randomBytes(70_000) };
    const baseTar = await makeTar(tmp, data, true);
    const tsTar = await makeTar(tmp, ts, false);
    const manifest = Buffer.from('{"Files": []}\n');
    const id = nextId(ctx);
    await W(ctx).put(id, 'base.tar.zst', baseTar);
    await W(ctx).put(id, '16384.tar', tsTar);
    await W(ctx).put(id, 'backup_manifest', manifest);
    const sums = { 'base.tar.zst': sha256Hex(baseTar), '16384.tar': sha256Hex(tsTar), backup_manifest: sha256Hex(manifest) };
    // 64 KiB ranges: tar is fed from many ranged reads on object storage.
    const layout = await storedLayout(await source(ctx, id, { chunkBytes: 64 * 1024, ahead: 2 }), doneBackup(id, sums));
    try {
      assert.equal(layout.oids, ['16384']);
      assert.is(layout.storedFiles, 2);
      assert.is(layout.totalBytes, baseTar.length + tsTar.length);
      assert.is(layout.counted, undefined);
      assert.ok((await readFile(layout.manifest!)).equals(manifest), 'manifest bytes');
      assert.is(await layout.readMap(), '16384 /srv/ts1\n');
      const into = await mkdtemp(path.join(tmp, 'pgdata-'));
      const r = await layout.unpack(undefined, { host: localHost(), dir: into });
      assert.is(r.storedBytes, baseTar.length);
      assertSameTree(await treeOf(into), data, 'data directory');
      const tsInto = await mkdtemp(path.join(tmp, 'ts-'));
      await layout.unpack('16384', { host: localHost(), dir: tsInto });
      assertSameTree(await treeOf(tsInto), ts, 'tablespace 16384');
    } finally {
      await layout.dispose();
    }

    // PG_VERSION's content is the byte after the first 512-byte header: tar still extracts it.
    const plain = await makeTar(tmp, { PG_VERSION: Buffer.from('15\n'), 'base/1/1': randomBytes(5000) }, false);
    const flipped = Buffer.from(plain);
    flipped[512] = flipped[512]! ^ 0x01;
    const bad = nextId(ctx);
    await W(ctx).put(bad, 'base.tar', flipped);
    await W(ctx).put(bad, 'backup_manifest', manifest);
    const badLayout = await storedLayout(await source(ctx, bad), doneBackup(bad, { 'base.tar': sha256Hex(plain), backup_manifest: sha256Hex(manifest) }));
    try {
      assert.is(await badLayout.readMap(), undefined, 'no tablespace_map in this tar');
      const into = await mkdtemp(path.join(tmp, 'pgdata-bad-'));
      await refuses(() => badLayout.unpack(undefined, { host: localHost(), dir: into }), new RegExp(`${bad}/base\\.tar does not match its recorded sha256`));
    } finally {
      await badLayout.dispose();
    }
  });

  t('a tar that vanishes after the layout was opened: readMap fails naming it, unpack too unless it had read it already; the process goes on', async (ctx) => {
    const data = randomBytes(200_000);
    const tar = await makeTar(ctx.tmp!, { PG_VERSION: Buffer.from('15\n'), 'base/1/1': data }, false);
    const manifest = Buffer.from('manifest\n');
    const id = nextId(ctx);
    await W(ctx).put(id, 'base.tar', tar);
    await W(ctx).put(id, 'backup_manifest', manifest);
    const layout = await storedLayout(await source(ctx, id), doneBackup(id, { 'base.tar': sha256Hex(tar), backup_manifest: sha256Hex(manifest) }));
    try {
      await W(ctx).remove(id, 'base.tar');
      const named = new RegExp(`${id}/base\\.tar`);
      const e = await refuses(() => layout.readMap(), named);
      assert.is(e.code, 'CATALOG');
      const into = await mkdtemp(path.join(ctx.tmp!, 'pgdata-gone-'));
      // From object storage the data directory's tar is fetched from the moment the layout is
      // opened (stored-layout.ts): what was read before it vanished is all of it here, and is
      // unpacked checked against its sha256. From a directory it is read only now, and is gone.
      const unpacked = await layout.unpack(undefined, { host: localHost(), dir: into }).then(
        () => true,
        (err: unknown) => {
          assert.instance(err, PgbkError, String(err));
          assert.match((err as Error).message, named);
          return false;
        },
      );
      if (unpacked) assert.ok((await treeOf(into))['base/1/1']?.equals(data), 'unpacked, but not the bytes stored');
    } finally {
      await layout.dispose();
    }
  });

  t("the next backup reads the previous backup's file list (files.json); missing or damaged: refused naming it", async (ctx) => {
    const id = nextId(ctx);
    const sha = (s: string): string => sha256Hex(Buffer.from(s));
    const text = formatManifest({
      listedAtMs: 1_767_225_600_000,
      pgdata: '/var/lib/postgresql/15/main',
      tablespaces: [{ oid: '16384', location: '/srv/ts1' }],
      chunkSize: 1024,
      compression: 'zstd',
      owner: { uid: 105, gid: 112 },
      files: [
        { path: 'data/PG_VERSION', size: 3, mtimeMs: 1_767_225_500_000, mode: 0o600, hashes: [sha('15\n')] },
        { path: 'data/base/1/1259', size: 2048, mtimeMs: 1_767_225_500_001, mode: 0o600, hashes: [sha('a'), sha('b')] },
        { path: 'data/empty', size: 0, mtimeMs: 1_767_225_500_002, mode: 0o640, hashes: [sha('')] },
      ],
    });
    await W(ctx).put(id, 'files.json', Buffer.from(text));
    const list = await readFileList(await source(ctx, id));
    assert.equal(list, parseManifest(text));
    assert.is(list.files.length, 3);
    assert.equal(list.files[1]!.hashes, [sha('a'), sha('b')]);
    assert.is(list.compression, 'zstd');

    // A basebackup backup has no file list: the next backup copies everything.
    const tars = nextId(ctx);
    await W(ctx).put(tars, 'base.tar', Buffer.from('x'));
    const e1 = await refuses(async () => readFileList(await source(ctx, tars)), new RegExp(`${tars}/files\\.json`));
    assert.is(e1.code, 'CATALOG');

    const damaged = nextId(ctx);
    await W(ctx).put(damaged, 'files.json', Buffer.from('{"formatVersion": 9}\n'));
    const e2 = await refuses(
      async () => readFileList(await source(ctx, damaged)),
      new RegExp(`${damaged}/files\\.json: files\\.json is not a pgbk file manifest`),
    );
    assert.is(e2.code, 'CATALOG');
  });

  t.run();
}
