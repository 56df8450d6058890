/**
 * The WAL summary's sparse bitmap of block numbers (pg/block-set.ts), against a plain Set on the
 * same blocks: membership, counts, iteration and the range question the incremental asks per chunk
 * — across words, pages and up to the largest block number (2^32 − 2, past int32).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BLOCK_SET_PAGE_BYTES, BlockSet, NO_BLOCKS } from '../../../src/pg/block-set.js';

const MAX_BLOCK = 0xfffffffe;

function both(blocks: readonly number[]): { set: BlockSet; ref: Set<number> } {
  const set = new BlockSet();
  const ref = new Set<number>();
  for (const b of blocks) {
    assert.is(set.add(b), !ref.has(b), `add ${b}`);
    ref.add(b);
  }
  return { set, ref };
}

const sorted = (xs: Iterable<number>): number[] => [...xs].sort((a, b) => a - b);

test('add, has, size and iteration agree with a Set, a block added twice counting once', () => {
  const blocks = [0, 1, 31, 32, 33, 4095, 4096, 4097, 131071, 131072, 7, 7, 4096, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 5, MAX_BLOCK, MAX_BLOCK];
  const { set, ref } = both(blocks);
  assert.is(set.size, ref.size);
  assert.equal(sorted(set), sorted(ref));
  for (const b of [...ref, 2, 30, 34, 4094, 4098, 2 ** 31 + 4, MAX_BLOCK - 1]) assert.is(set.has(b), ref.has(b), String(b));
  assert.is(NO_BLOCKS.size, 0);
  assert.equal([...NO_BLOCKS], []);
  assert.is(NO_BLOCKS.anyIn(0, MAX_BLOCK + 1), false);
});

test('anyIn(from, to) is "some block b with from <= b < to", at every edge', () => {
  const { set, ref } = both([5, 64, 127, 128, 4095, 4096, 9000, 2 ** 31 + 3, MAX_BLOCK]);
  const naive = (from: number, to: number): boolean => [...ref].some((b) => b >= from && b < to);
  const edges = [
    0,
    4,
    5,
    6,
    32,
    63,
    64,
    65,
    96,
    127,
    128,
    129,
    200,
    256,
    4095,
    4096,
    4097,
    8192,
    8999,
    9000,
    9001,
    2 ** 31,
    2 ** 31 + 3,
    2 ** 31 + 4,
    MAX_BLOCK,
    MAX_BLOCK + 1,
  ];
  for (const from of edges) for (const to of edges) assert.is(set.anyIn(from, to), naive(from, to), `[${from}, ${to})`);
  // Chunks of 128 blocks, as walUnchangedChunks asks: 0 (5, 64, 127), 1 (128), 31 (4095), 32 (4096), 70 (9000).
  const changed = Array.from({ length: 80 }, (_, i) => set.anyIn(i * 128, (i + 1) * 128));
  assert.equal(
    changed.flatMap((c, i) => (c ? [i] : [])),
    [0, 1, 31, 32, 70],
  );
});

test('random blocks: the same answers as a Set', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const blocks = Array.from({ length: 3000 }, () => (rand(4) === 0 ? rand(MAX_BLOCK + 1) : rand(300_000)));
  const { set, ref } = both(blocks);
  assert.equal(sorted(set), sorted(ref));
  for (let i = 0; i < 2000; i++) {
    const from = rand(310_000);
    const to = from + rand(700);
    assert.is(
      set.anyIn(from, to),
      [...ref].some((b) => b >= from && b < to),
      `[${from}, ${to})`,
    );
  }
});

test('pages are made only where blocks are: one page for a relation touched in one place', () => {
  const set = new BlockSet();
  set.add(1_000_000);
  set.add(1_000_001);
  assert.is(set.pageCount, 1);
  set.add(MAX_BLOCK);
  assert.is(set.pageCount, 2);
  assert.is(BLOCK_SET_PAGE_BYTES, 512);
});

test.run();
