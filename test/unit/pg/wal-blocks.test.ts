/**
 * The WAL block summary (pg/wal-blocks.ts) on records built to PostgreSQL 15's layout: block
 * references by relation and fork, the records that make a relation or a database new or cut it
 * short, and the ones that make a summary unusable. (The integration test ssh/wal-changes compares
 * it with pg_waldump on real WAL.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_TRACKED_BLOCKS, RM_DBASE_ID, RM_SMGR_ID, WalBlockSummary } from '../../../src/pg/wal-blocks.js';
import { RM_XACT_ID, RM_XLOG_ID } from '../../../src/pg/wal-records.js';

interface Block {
  readonly rel?: readonly [number, number, number];
  readonly fork?: number;
  readonly block: number;
  readonly image?: boolean;
  readonly data?: number;
}

const u32 = (...xs: number[]): Buffer => {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => (x < 0 ? b.writeInt32LE(x, 4 * i) : b.writeUInt32LE(x, 4 * i)));
  return b;
};

/** One record's bytes: header, block headers (a relation only when it differs: BKPBLOCK_SAME_REL), main data. */
interface Rec {
  readonly lsn: number;
  readonly rmid: number;
  readonly info: number;
  readonly bytes: Buffer;
}

/** As the reader hands a record over (WalReaderOptions.raw). */
function add(s: WalBlockSummary, r: Rec): void {
  s.addRaw(r.bytes, 0, r.bytes.length, r.lsn, r.rmid, r.info);
}

function record(rmid: number, info: number, blocks: readonly Block[], main: Buffer = Buffer.alloc(0)): Rec {
  const parts: Buffer[] = [];
  const payload: Buffer[] = [];
  let lastRel: string | undefined;
  blocks.forEach((b, id) => {
    const rel = b.rel ?? [1663, 5, 16384];
    const same = lastRel === rel.join('/');
    lastRel = rel.join('/');
    const dataLen = b.data ?? 0;
    const flags = (b.fork ?? 0) | (b.image === true ? 0x10 : 0) | (same ? 0x80 : 0);
    const h = Buffer.alloc(4);
    h[0] = id;
    h[1] = flags;
    h.writeUInt16LE(dataLen, 2);
    parts.push(h);
    if (b.image === true) {
      const img = Buffer.alloc(5);
      img.writeUInt16LE(100, 0);
      img[4] = 0x02; // BKPIMAGE_APPLY, no hole, not compressed
      parts.push(img);
      payload.push(Buffer.alloc(100, 1));
    }
    if (!same) parts.push(u32(...rel));
    parts.push(u32(b.block));
    payload.push(Buffer.alloc(dataLen, 2));
  });
  if (main.length > 0) parts.push(main.length < 256 ? Buffer.from([255, main.length]) : Buffer.concat([Buffer.from([254]), u32(main.length)]));
  const bytes = Buffer.concat([Buffer.alloc(24), ...parts, ...payload, main]);
  bytes.writeUInt32LE(bytes.length, 0);
  bytes[16] = info;
  bytes[17] = rmid;
  return { lsn: 1000, rmid, info, bytes };
}

const HEAP = 10;
const blocksOf = (s: WalBlockSummary, spc: number, db: number, rel: number): { blocks: number[]; limit: number | undefined } | 'unchanged' => {
  const c = s.changes(spc, db, rel);
  return c.kind === 'unchanged' ? 'unchanged' : { blocks: [...c.blocks].sort((a, b) => a - b), limit: c.limit };
};

test('block references of the main fork are collected by relation; other forks are not', () => {
  const s = new WalBlockSummary();
  add(s, record(HEAP, 0x00, [{ block: 7, data: 30 }]));
  add(s, record(HEAP, 0x20, [{ block: 9, image: true }, { block: 7 }, { rel: [1663, 5, 99], block: 1 }]));
  add(s, record(HEAP, 0x00, [{ fork: 2, block: 0 }])); // visibility map
  add(s, record(HEAP, 0x00, [{ rel: [1664, 0, 1262], block: 3 }]));
  assert.is(s.unusable, undefined);
  assert.equal(blocksOf(s, 1663, 5, 16384), { blocks: [7, 9], limit: undefined });
  assert.equal(blocksOf(s, 1663, 5, 99), { blocks: [1], limit: undefined });
  assert.equal(blocksOf(s, 1664, 0, 1262), { blocks: [3], limit: undefined });
  assert.is(blocksOf(s, 1663, 5, 12345), 'unchanged');
  assert.is(s.records, 4);
});

test('a created relation is new from block 0; a truncated one from its new end (main fork only)', () => {
  const s = new WalBlockSummary();
  add(s, record(RM_SMGR_ID, 0x10, [], u32(1663, 5, 500, 0)));
  add(s, record(RM_SMGR_ID, 0x10, [], u32(1663, 5, 501, 1))); // its FSM: not the main fork
  add(s, record(RM_SMGR_ID, 0x20, [], u32(40, 1663, 5, 600, 0x7)));
  add(s, record(RM_SMGR_ID, 0x20, [], u32(10, 1663, 5, 600, 0x1))); // a second, lower truncation wins
  add(s, record(RM_SMGR_ID, 0x20, [], u32(5, 1663, 5, 700, 0x2))); // visibility map only
  assert.equal(blocksOf(s, 1663, 5, 500), { blocks: [], limit: 0 });
  assert.is(blocksOf(s, 1663, 5, 501), 'unchanged');
  assert.equal(blocksOf(s, 1663, 5, 600), { blocks: [], limit: 10 });
  assert.is(blocksOf(s, 1663, 5, 700), 'unchanged');
});

test('a database created (either strategy) or dropped: every relation in it is new', () => {
  const s = new WalBlockSummary();
  add(s, record(RM_DBASE_ID, 0x00, [], u32(16400, 1663, 1, 1663))); // CREATE DATABASE … STRATEGY file_copy
  add(s, record(RM_DBASE_ID, 0x10, [], u32(16401, 16500))); // wal_log, in tablespace 16500
  add(s, record(RM_DBASE_ID, 0x20, [], u32(16402, 2, 1663, 16500))); // DROP DATABASE with two tablespaces
  assert.equal(blocksOf(s, 1663, 16400, 1259), { blocks: [], limit: 0 });
  assert.equal(blocksOf(s, 16500, 16401, 1259), { blocks: [], limit: 0 });
  assert.is(blocksOf(s, 1663, 16401, 1259), 'unchanged');
  assert.equal(blocksOf(s, 1663, 16402, 3), { blocks: [], limit: 0 });
  assert.equal(blocksOf(s, 16500, 16402, 3), { blocks: [], limit: 0 });
  assert.is(s.unusable, undefined);
});

test('relations dropped at commit and abort are new from block 0 (xinfo layout: dbinfo, subxacts, relfilenodes)', () => {
  const s = new WalBlockSummary();
  const time = Buffer.alloc(8);
  // commit with XLOG_XACT_HAS_INFO: xinfo = dbinfo | subxacts | relfilenodes | invals
  const commit = Buffer.concat([time, u32(0x1 | 0x2 | 0x4 | 0x8), u32(5, 1663), u32(2, 900, 901), u32(2), u32(1663, 5, 800), u32(1663, 5, 801), u32(0)]);
  add(s, record(RM_XACT_ID, 0x00 | 0x80, [], commit));
  const abort = Buffer.concat([time, u32(0x4), u32(1), u32(1663, 5, 802)]);
  add(s, record(RM_XACT_ID, 0x20 | 0x80, [], abort));
  add(s, record(RM_XACT_ID, 0x00, [], time)); // a plain commit: nothing dropped
  for (const rel of [800, 801, 802]) assert.equal(blocksOf(s, 1663, 5, rel), { blocks: [], limit: 0 }, String(rel));
  assert.is(blocksOf(s, 1663, 5, 900), 'unchanged', 'subxact ids are not relations');
  assert.is(s.unusable, undefined);
});

test('wal_level minimal, the end of a recovery, a malformed or short record: unusable, with the reason', () => {
  const replica = new WalBlockSummary();
  add(replica, record(RM_XLOG_ID, 0x60, [], u32(100, 8, 10, 0, 64, 1, 0)));
  assert.is(replica.unusable, undefined);
  const minimal = new WalBlockSummary();
  add(minimal, record(RM_XLOG_ID, 0x60, [], u32(100, 8, 10, 0, 64, 0, 0)));
  assert.match(minimal.unusable ?? '', /wal_level was minimal/);
  const recovery = new WalBlockSummary();
  add(recovery, record(RM_XLOG_ID, 0x90, [], Buffer.alloc(16)));
  assert.match(recovery.unusable ?? '', /a recovery ended/);
  const malformed = new WalBlockSummary();
  const r = record(HEAP, 0, [{ block: 1, data: 10 }]);
  add(malformed, { ...r, bytes: r.bytes.subarray(0, r.bytes.length - 3) });
  assert.match(malformed.unusable ?? '', /does not decode/);
  const negative = new WalBlockSummary();
  add(negative, record(RM_XACT_ID, 0x00 | 0x80, [], Buffer.concat([Buffer.alloc(8), u32(0x2 | 0x4), u32(-3), u32(1), u32(1663, 5, 800)])));
  assert.match(negative.unusable ?? '', /counts -3 subtransactions/);
  const negativeRels = new WalBlockSummary();
  add(negativeRels, record(RM_XACT_ID, 0x20 | 0x80, [], Buffer.concat([Buffer.alloc(8), u32(0x4), u32(-1), u32(1663, 5, 802)])));
  assert.match(negativeRels.unusable ?? '', /counts -1 relations/);
  const negativeSpcs = new WalBlockSummary();
  add(negativeSpcs, record(RM_DBASE_ID, 0x20, [], u32(16401, -2, 1663)));
  assert.match(negativeSpcs.unusable ?? '', /counts -2 tablespaces/);
  const short = new WalBlockSummary();
  add(short, record(RM_SMGR_ID, 0x20, [], u32(1, 2)));
  assert.match(short.unusable ?? '', /too short/);
  // Once unusable it stays so.
  add(short, record(HEAP, 0, [{ block: 1 }]));
  assert.match(short.unusable ?? '', /too short/);
});

test('more distinct blocks than it tracks: unusable (a block seen twice counts once)', () => {
  assert.ok(MAX_TRACKED_BLOCKS >= 1 << 20);
  const s = new WalBlockSummary(1000);
  const blocks = Array.from({ length: 32 }, (_, i) => ({ block: i }));
  for (let n = 0; n * 32 <= 1000; n++) {
    add(
      s,
      record(
        HEAP,
        0,
        blocks.map((b) => ({ block: b.block + n * 32 })),
      ),
    );
    if (s.unusable !== undefined) break;
  }
  assert.match(s.unusable ?? '', /more than 1000 blocks changed/);
  // Blocks scattered one per bitmap page (4096 blocks a page, 512 bytes): the memory bound.
  const scattered = new WalBlockSummary(MAX_TRACKED_BLOCKS, 512 * 10);
  for (let n = 0; n < 11 && scattered.unusable === undefined; n++) add(scattered, record(HEAP, 0, [{ block: n * 4096 }]));
  assert.match(scattered.unusable ?? '', /scattered over more than/);
  const dense = new WalBlockSummary(MAX_TRACKED_BLOCKS, 512 * 10);
  for (let n = 0; n < 4096 * 10; n += 7) add(dense, record(HEAP, 0, [{ block: n }]));
  assert.is(dense.unusable, undefined);
  const again = new WalBlockSummary(10);
  for (let n = 0; n < 50; n++) add(again, record(HEAP, 0, [{ block: n % 5 }]));
  assert.is(again.unusable, undefined);
});

test.run();
