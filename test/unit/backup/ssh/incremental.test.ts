import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  relationFileOf,
  walUnchangedChunks,
  chunkCountOf,
  chunkLength,
  chunkLocation,
  formatManifest,
  pageLsnsTrusted,
  parseManifest,
  planReuse,
  type FileManifest,
} from '../../../../src/backup/ssh/incremental.js';
import { BlockSet } from '../../../../src/pg/block-set.js';

const h = (s: string): string => createHash('sha256').update(s).digest('hex');

const v2: FileManifest = parseManifest(
  formatManifest({
    listedAtMs: 100_000,
    pgdata: '/pg',
    tablespaces: [],
    chunkSize: 4,
    owner: { uid: 26, gid: 26 },
    files: [
      { path: 'data/a', size: 10, mtimeMs: 50_000, mode: 0o600, hashes: [h('a0'), h('a1'), h('a2')] },
      { path: 'data/b', size: 10, mtimeMs: 50_000, mode: 0o600, hashes: [h('b0'), h('b1'), h('b2')] },
      { path: 'data/c', size: 3, mtimeMs: 99_000, mode: 0o600, hashes: [h('c')] },
      { path: 'data/d', size: 4, mtimeMs: 50_000, mode: 0o644, hashes: [h('d')] },
    ],
  }),
);

test('files.json v2 round-trips: sizes, modes, chunk hashes, owner', () => {
  assert.is(v2.formatVersion, 2);
  assert.is(v2.chunkSize, 4);
  assert.equal(v2.owner, { uid: 26, gid: 26 });
  assert.equal(v2.files[3], { path: 'data/d', size: 4, mtimeMs: 50_000, mode: 0o644, hashes: [h('d')] });
});

test('plan: unchanged files reused whole; changed ones fetched with the previous chunk hashes; new ones without', () => {
  const plan = planReuse(
    [
      { path: 'data/a', size: 10, mtimeMs: 50_000, mode: 0o600 }, // unchanged: reuse
      { path: 'data/b', size: 11, mtimeMs: 50_000, mode: 0o600 }, // size changed: fetch, compare chunks
      { path: 'data/c', size: 3, mtimeMs: 99_000, mode: 0o600 }, // within the margin of the previous listing
      { path: 'data/d', size: 4, mtimeMs: 60_000, mode: 0o600 }, // mtime moved
      { path: 'data/e', size: 10, mtimeMs: 1, mode: 0o600 }, // new file
    ],
    v2,
    4,
  );
  assert.equal(
    plan.reuse.map((x) => [x.file.path, x.prev.hashes.length]),
    [['data/a', 3]],
  );
  assert.equal(plan.importLocal, []);
  assert.equal(
    plan.fetch.map((x) => [x.file.path, x.prev?.hashes.length ?? 0]),
    [
      ['data/b', 3],
      ['data/c', 1],
      ['data/d', 1],
      ['data/e', 0],
    ],
  );
  assert.is(planReuse([{ path: 'data/a', size: 10, mtimeMs: 50_000, mode: 0o600 }], undefined).fetch.length, 1);
});

test('plan: another chunk size gives no chunk hashes to compare; unchanged files are re-chunked locally', () => {
  const plan = planReuse(
    [
      { path: 'data/a', size: 10, mtimeMs: 50_000, mode: 0o600 },
      { path: 'data/b', size: 12, mtimeMs: 50_000, mode: 0o600 },
    ],
    v2,
    8,
  );
  assert.equal(plan.reuse, []);
  assert.equal(
    plan.importLocal.map((x) => x.file.path),
    ['data/a'],
  );
  assert.equal(
    plan.fetch.map((x) => [x.file.path, x.prev]),
    [['data/b', undefined]],
  );
});

test('files.json v1 (older backups) parses; unchanged files imported, changed fetched whole', () => {
  const v1 = parseManifest(
    JSON.stringify({
      formatVersion: 1,
      listedAtMs: 100_000,
      pgdata: '/pg',
      tablespaces: [],
      files: [
        ['data/a', 10, 50_000],
        ['data/b', 10, 50_000],
      ],
    }),
  );
  assert.is(v1.formatVersion, 1);
  assert.is(v1.files[0]?.hashes, undefined);
  const plan = planReuse(
    [
      { path: 'data/a', size: 10, mtimeMs: 50_000, mode: 0o600 },
      { path: 'data/b', size: 10, mtimeMs: 70_000, mode: 0o600 },
    ],
    v1,
    4,
  );
  assert.equal(plan.reuse, []);
  assert.equal(
    plan.importLocal.map((x) => x.file.path),
    ['data/a'],
  );
  assert.equal(
    plan.fetch.map((x) => [x.file.path, x.prev]),
    [['data/b', undefined]],
  );
});

test('bad manifests are refused with the reason', () => {
  assert.throws(() => parseManifest('{"formatVersion":3}'), /formatVersion 3/);
  const base = { formatVersion: 2, listedAtMs: 1, pgdata: '/pg', tablespaces: [], chunkSize: 4 };
  assert.throws(() => parseManifest(JSON.stringify({ ...base, files: [['data/a', 10, 1, 384, [h('x')]]] })), /1 chunk hashes for 10 bytes/);
  assert.throws(() => parseManifest(JSON.stringify({ ...base, files: [['data/a', 1, 1, 384, ['nothex']]] })), /bad mode or hashes/);
  assert.throws(() => parseManifest(JSON.stringify({ ...base, chunkSize: undefined, files: [] })), /chunkSize/);
});

test('chunk layout: one chunk is a plain file, more are <path>.pgbk-chunks/NNNNNNNN', () => {
  assert.is(chunkLocation('data/base/1/16384', 1, 0), 'data/base/1/16384');
  assert.is(chunkLocation('data/base/1/16384', 3, 2), 'data/base/1/16384.pgbk-chunks/00000002');
  assert.is(chunkLocation('data/x', 300, 255), 'data/x.pgbk-chunks/000000ff');
  assert.equal([chunkCountOf(0, 4), chunkCountOf(4, 4), chunkCountOf(5, 4), chunkCountOf(8, 4)], [1, 1, 2, 2]);
  assert.equal([chunkLength(10, 4, 0), chunkLength(10, 4, 2), chunkLength(0, 4, 0)], [4, 2, 0]);
});

test('files.json v3: compressed objects; a backup links only from its own format, across formats unchanged files are imported', () => {
  const text = formatManifest({ ...v2, chunkSize: 4, compression: 'zstd' });
  const v3 = parseManifest(text);
  assert.is(v3.formatVersion, 3);
  assert.is(v3.compression, 'zstd');
  assert.equal(v3.files, v2.files);
  assert.is(v2.compression, undefined);
  const current = [
    { path: 'data/a', size: 10, mtimeMs: 50_000, mode: 0o600 }, // unchanged
    { path: 'data/b', size: 11, mtimeMs: 50_000, mode: 0o600 }, // changed
  ];
  const same = planReuse(current, v3, 4, undefined, 3);
  assert.equal(
    same.reuse.map((x) => x.file.path),
    ['data/a'],
  );
  assert.is(same.fetch[0]?.prev?.hashes.length, 3);
  // A compressed backup after an uncompressed one (and the reverse): nothing linked across formats.
  for (const [prev, version] of [
    [v2, 3],
    [v3, 2],
  ] as const) {
    const across = planReuse(current, prev, 4, undefined, version);
    assert.equal(across.reuse, []);
    assert.equal(
      across.importLocal.map((x) => x.file.path),
      ['data/a'],
    );
    assert.is(across.fetch[0]?.prev, undefined);
  }
  assert.throws(() => parseManifest(text.replace('"compression":"zstd"', '"compression":"lz4"')), /formatVersion 3 with compression "lz4"/);
});

test('page LSNs are trusted for relation main forks only', () => {
  for (const p of ['data/base/5/16384', 'data/base/5/16384.12', 'data/global/1262', 'tablespaces/16385/PG_15_202209061/5/16390'])
    assert.ok(pageLsnsTrusted(p), p);
  for (const p of [
    'data/base/5/16384_vm',
    'data/base/5/16384_fsm',
    'data/base/5/16384_init',
    'data/global/pg_control',
    'data/pg_xact/0000',
    'data/base/5/PG_VERSION',
    'data/base/5/t3_16384',
    'data/pg_multixact/offsets/0000',
  ])
    assert.not.ok(pageLsnsTrusted(p), p);
});

test('relationFileOf: the relation and segment of a stored main-fork path', () => {
  assert.equal(relationFileOf('data/base/5/16384'), { spcOid: 1663, dbOid: 5, relNumber: 16384, segment: 0 });
  assert.equal(relationFileOf('data/base/5/16384.2'), { spcOid: 1663, dbOid: 5, relNumber: 16384, segment: 2 });
  assert.equal(relationFileOf('data/global/1262'), { spcOid: 1664, dbOid: 0, relNumber: 1262, segment: 0 });
  assert.equal(relationFileOf('tablespaces/16500/PG_15_202209061/16401/17000.1'), { spcOid: 16500, dbOid: 16401, relNumber: 17000, segment: 1 });
  for (const p of ['data/base/5/16384_vm', 'data/base/5/16384_fsm.1', 'data/pg_xact/0000', 'data/base/5/PG_VERSION', 'data/global/pg_control'])
    assert.is(relationFileOf(p), undefined, p);
});

/** A BlockSet of `blocks`. */
function blockSet(blocks: readonly number[]): BlockSet {
  const s = new BlockSet();
  for (const b of blocks) s.add(b);
  return s;
}

test('walUnchangedChunks: whole chunks below both sizes, untouched by the WAL and below the limit', () => {
  const MiB = 1024 * 1024;
  const layout = { pageSize: 8192, segmentBlocks: 131072 };
  const file = (p: string, size: number) => ({ path: p, size, mtimeMs: 0, mode: 0o600 });
  const none = () => ({ kind: 'unchanged' as const });
  // 10 MiB then and now, nothing in the WAL: all ten chunks.
  assert.equal(walUnchangedChunks(file('data/base/5/16384', 10 * MiB), 10 * MiB, none, layout), [[0, 10]]);
  // Blocks 0 and 300 (chunk 2: 128 blocks per chunk) changed; the file grew to 12.5 MiB: the old 10 only.
  const some = () => ({ kind: 'blocks' as const, blocks: blockSet([0, 300]), limit: undefined });
  assert.equal(walUnchangedChunks(file('data/base/5/16384', 12.5 * MiB), 10 * MiB, some, layout), [
    [1, 2],
    [3, 10],
  ]);
  // It shrank to 4.5 MiB (the previous backup had 10): chunks within both, 0..3.
  assert.equal(walUnchangedChunks(file('data/base/5/16384', 4.5 * MiB), 10 * MiB, none, layout), [[0, 4]]);
  // A truncation to block 600 (in chunk 4): chunks from 4 on count as changed.
  const cut = () => ({ kind: 'blocks' as const, blocks: blockSet([]), limit: 600 });
  assert.equal(walUnchangedChunks(file('data/base/5/16384', 10 * MiB), 10 * MiB, cut, layout), [[0, 4]]);
  // Created anew (limit 0): nothing.
  const fresh = () => ({ kind: 'blocks' as const, blocks: blockSet([]), limit: 0 });
  assert.equal(walUnchangedChunks(file('data/base/5/16384', 10 * MiB), 10 * MiB, fresh, layout), []);
  // Segment file 1 starts at block 131072: block 131072 + 130 is its chunk 1; block 5 is segment 0's.
  const seg1 = () => ({ kind: 'blocks' as const, blocks: blockSet([5, 131072 + 130]), limit: 131072 + 1024 });
  assert.equal(walUnchangedChunks(file('data/base/5/16384.1', 10 * MiB), 10 * MiB, seg1, layout), [
    [0, 1],
    [2, 8],
  ]);
  // The relation asked about is the file's own.
  const asked: number[][] = [];
  walUnchangedChunks(
    file('tablespaces/16500/PG_15_202209061/16401/17000', MiB),
    MiB,
    (s, d, r) => {
      asked.push([s, d, r]);
      return none();
    },
    layout,
  );
  assert.equal(asked, [[16500, 16401, 17000]]);
  // Not a main fork, a partial chunk only, a file longer than a segment, a page size that does not divide a chunk: nothing.
  assert.equal(walUnchangedChunks(file('data/base/5/16384_vm', 10 * MiB), 10 * MiB, none, layout), []);
  assert.equal(walUnchangedChunks(file('data/base/5/16384', MiB - 8192), MiB, none, layout), []);
  assert.equal(walUnchangedChunks(file('data/base/5/16384', 2 * MiB), 2 * MiB, none, { pageSize: 8192, segmentBlocks: 128 }), []);
  assert.equal(walUnchangedChunks(file('data/base/5/16384', 2 * MiB), 2 * MiB, none, { pageSize: 3000, segmentBlocks: 131072 }), []);
});

test.run();
