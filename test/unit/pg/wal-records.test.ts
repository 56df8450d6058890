/**
 * pgbk's WAL record reader on synthetic WAL built to PostgreSQL 15's layout: records spanning
 * pages and segments, a scan that starts inside a record, XLOG_SWITCH, the end of written WAL, a
 * bad CRC. (The integration test restore/new-tablespace compares it with pg_waldump on real WAL.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mainDataOf, recordCrc, RM_TBLSPC_ID, RM_XLOG_ID, WalRecordReader, XLOG_SWITCH, type WalRecord } from '../../../src/pg/wal-records.js';

const SEG = 1024 * 1024;
const BLCK = 8192;

interface Rec {
  readonly rmid: number;
  readonly info: number;
  readonly main: Buffer;
}

function encode(r: Rec, prev: number): Buffer {
  const mh = r.main.length < 256 ? Buffer.from([255, r.main.length]) : Buffer.concat([Buffer.from([254]), Buffer.alloc(4)]);
  if (r.main.length >= 256) mh.writeUInt32LE(r.main.length, 1);
  const b = Buffer.concat([Buffer.alloc(24), mh, r.main]);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(777, 4);
  b.writeUInt32LE(prev % 0x100000000, 8);
  b.writeUInt32LE(Math.floor(prev / 0x100000000), 12);
  b[16] = r.info;
  b[17] = r.rmid;
  b.writeUInt32LE(recordCrc(b), 20);
  return b;
}

/** Segments from firstSegno holding the records in order; returns their LSNs. */
function build(firstSegno: number, recs: readonly Rec[]): { segs: Buffer[]; lsns: number[]; end: number } {
  const base = firstSegno * SEG;
  const segs: Buffer[] = [];
  let pos = base;
  const at = (): { seg: Buffer; off: number } => {
    const i = Math.floor((pos - base) / SEG);
    while (segs.length <= i) segs.push(Buffer.alloc(SEG));
    return { seg: segs[i]!, off: (pos - base) % SEG };
  };
  const pageHeader = (remaining: number): void => {
    if (pos % BLCK !== 0) return;
    const { seg, off } = at();
    const long = pos % SEG === 0;
    seg.writeUInt16LE(0xd110, off);
    seg.writeUInt16LE((long ? 2 : 0) | (remaining > 0 ? 1 : 0), off + 2);
    seg.writeUInt32LE(1, off + 4);
    seg.writeUInt32LE(pos % 0x100000000, off + 8);
    seg.writeUInt32LE(Math.floor(pos / 0x100000000), off + 12);
    seg.writeUInt32LE(remaining, off + 16);
    if (long) {
      seg.writeUInt32LE(SEG, off + 32);
      seg.writeUInt32LE(BLCK, off + 36);
    }
    pos += long ? 40 : 24;
  };
  const lsns: number[] = [];
  let end = 0;
  let prev = 0;
  for (const r of recs) {
    pageHeader(0);
    const bytes = encode(r, prev);
    lsns.push(pos);
    prev = pos;
    let i = 0;
    while (i < bytes.length) {
      if (i > 0) pageHeader(bytes.length - i);
      const { seg, off } = at();
      const n = Math.min(BLCK - (pos % BLCK), bytes.length - i);
      bytes.copy(seg, off, i, i + n);
      pos += n;
      i += n;
    }
    pos = (pos + 7) & ~7;
    if (r.rmid === RM_XLOG_ID && r.info === XLOG_SWITCH) pos = Math.ceil(pos / SEG) * SEG;
  }
  end = pos;
  // Headers of the pages left (as PostgreSQL writes them), zeroes after the last record.
  while ((pos - base) % SEG !== 0 || segs.length * SEG > pos - base) {
    if (pos % BLCK === 0) pageHeader(0);
    pos = Math.min(Math.ceil((pos + 1) / BLCK) * BLCK, base + segs.length * SEG);
    if (pos - base >= segs.length * SEG) break;
  }
  return { segs, lsns, end };
}

const filler = (n: number): Rec => ({ rmid: 10, info: 0, main: Buffer.alloc(n, 0xab) });
const tablespace = (oid: number, p: string): Rec => {
  const main = Buffer.concat([Buffer.alloc(4), Buffer.from(`${p}\0`)]);
  main.writeUInt32LE(oid, 0);
  return { rmid: RM_TBLSPC_ID, info: 0, main };
};

function readAll(segs: readonly Buffer[], firstSegno: number, startLsn = 0): { recs: WalRecord[]; ended: ReturnType<WalRecordReader['feed']> } {
  const reader = new WalRecordReader({ segSize: SEG, startLsn, wants: (rmid) => rmid === RM_TBLSPC_ID });
  const recs: WalRecord[] = [];
  let ended: ReturnType<WalRecordReader['feed']> = { ended: false };
  segs.forEach((s, i) => {
    ended = reader.feed(firstSegno + i, s, (r) => recs.push(r));
  });
  return { recs, ended };
}

test('records across pages and segments, wanted ones decoded, positions exact', () => {
  const recs: Rec[] = [];
  for (let i = 0; i < 130; i++) recs.push(filler(i === 7 ? 20_000 : 8000 - (i % 5) * 13));
  // One more filler so that the tablespace record starts 16 bytes before a page ends.
  let room = BLCK - (build(3, recs).end % BLCK);
  if (room < 16 + 24 + 5 + 300) {
    recs.push(filler(room + 1000));
    room = BLCK - (build(3, recs).end % BLCK);
  }
  const m = room - 16 - 24 - 5;
  recs.push(filler(m));
  recs.push(tablespace(16390, '/srv/ts-across-a-page'));
  for (let i = 0; i < 5; i++) recs.push(filler(300));
  recs.push(tablespace(16391, '/srv/second'));
  const { segs, lsns } = build(3, recs);
  assert.ok(segs.length >= 2, 'the records cross a segment boundary');
  const { recs: got, ended } = readAll(segs, 3);
  assert.equal(
    got.map((r) => r.lsn),
    lsns,
  );
  assert.ok(ended.ended, 'zeroes after the last record end the WAL');
  const ts = got.filter((r) => r.rmid === RM_TBLSPC_ID);
  assert.equal(
    ts.map((r) => r.mainData?.subarray(4, r.mainData.indexOf(0, 4)).toString()),
    ['/srv/ts-across-a-page', '/srv/second'],
  );
  assert.is(ts[0]!.mainData!.readUInt32LE(0), 16390);
  assert.not.equal(Math.floor(ts[0]!.lsn / BLCK), Math.floor((ts[0]!.endLsn - 1) / BLCK), 'the first tablespace record spans a page boundary');
  assert.is(got[0]!.mainData, undefined, 'unwanted records are not decoded');
  for (let i = 1; i < got.length; i++) assert.is(got[i]!.prevLsn, got[i - 1]!.lsn);
});

test('a scan starting in a later segment skips the record continued from the one before', () => {
  const recs: Rec[] = [];
  for (let i = 0; i < 200; i++) recs.push(filler(7000));
  const { segs, lsns } = build(0, recs);
  const secondStart = SEG;
  const expected = lsns.filter((l) => l >= secondStart);
  const { recs: got } = readAll(segs.slice(1), 1);
  assert.equal(
    got.map((r) => r.lsn),
    expected,
  );
  // startLsn filters, without losing track of the records before it.
  const from = expected[3]!;
  assert.equal(
    readAll(segs.slice(1), 1, from).recs.map((r) => r.lsn),
    expected.slice(3),
  );
});

test('after XLOG_SWITCH the rest of the segment is skipped and the next one read', () => {
  const { segs, lsns } = build(5, [filler(100), { rmid: RM_XLOG_ID, info: XLOG_SWITCH, main: Buffer.alloc(0) }, filler(100), tablespace(1, '/x')]);
  assert.is(segs.length, 2);
  // Garbage where nothing was written after the switch must not matter.
  segs[0]!.fill(0x5a, 16 * BLCK + 24, 17 * BLCK);
  const { recs } = readAll(segs, 5);
  assert.equal(
    recs.map((r) => r.lsn),
    lsns,
  );
  assert.is(lsns[2], 6 * SEG + 40);
});

test('a bad CRC on a decoded record, or a page from elsewhere, is the end of WAL', () => {
  const { segs } = build(0, [filler(50), tablespace(7, '/bad'), filler(50)]);
  const bad = Buffer.from(segs[0]!);
  bad[40 + 80 + 30]! ^= 0xff; // inside the tablespace record's path
  const r = readAll([bad], 0);
  assert.is(r.recs.length, 1);
  assert.ok(r.ended.ended && /bad CRC/.test(r.ended.reason), JSON.stringify(r.ended));
  const { segs: big } = build(
    0,
    Array.from({ length: 10 }, () => filler(3000)),
  );
  const m = Buffer.from(big[0]!);
  m.writeUInt32LE(123 * BLCK, BLCK + 8);
  const r2 = readAll([m], 0);
  assert.ok(r2.ended.ended && /was not written for that position|no continuation/.test(r2.ended.reason), JSON.stringify(r2.ended));
});

/**
 * readAll, but each segment goes in pieces of `pieceBytes` through ONE buffer that is scribbled
 * over after every piece, as the restore's scan decodes them: the reader must keep nothing of a
 * piece once feedPiece returns. mainData is copied in the callback (it is valid only there).
 */
function readInPieces(segs: readonly Buffer[], firstSegno: number, pieceBytes: number): { recs: WalRecord[]; ended: ReturnType<WalRecordReader['feed']> } {
  const reader = new WalRecordReader({ segSize: SEG, startLsn: 0, wants: (rmid) => rmid === RM_TBLSPC_ID });
  const recs: WalRecord[] = [];
  const onRecord = (r: WalRecord): void => {
    recs.push(r.mainData === undefined ? r : { ...r, mainData: Buffer.from(r.mainData) });
  };
  const out = Buffer.alloc(pieceBytes);
  let ended: ReturnType<WalRecordReader['feed']> = { ended: false };
  segs.forEach((s, i) => {
    for (let at = 0; at < s.length; at += pieceBytes) {
      const n = s.copy(out, 0, at, Math.min(s.length, at + pieceBytes));
      ended = reader.feedPiece(firstSegno + i, at, out.subarray(0, n), onRecord);
      out.fill(0x77);
    }
    if (!ended.ended) ended = reader.endOfSegment(firstSegno + i, s.length);
  });
  return { recs, ended };
}

test('pieces of a segment through one reused buffer read the same records as whole segments, wanted ones across pieces and segments included', () => {
  const recs: Rec[] = [];
  for (let i = 0; i < 60; i++) recs.push(filler(6000 + (i % 7) * 300));
  recs.push(tablespace(16400, `/srv/${'long/'.repeat(4000)}across-pieces`)); // ~20 kB: spans pieces of 16 KiB
  for (let i = 0; i < 90; i++) recs.push(filler(7000));
  recs.push(tablespace(16401, `/srv/${'x'.repeat(1_200_000)}`)); // longer than a segment: spans three
  recs.push(filler(100));
  recs.push(tablespace(16402, '/srv/last'));
  const { segs, lsns } = build(2, recs);
  assert.ok(segs.length >= 3, `${segs.length} segments`);
  const whole = readAll(segs, 2);
  assert.equal(
    whole.recs.map((r) => r.lsn),
    lsns,
  );
  for (const pieceBytes of [2 * BLCK, 64 * 1024, SEG]) {
    const got = readInPieces(segs, 2, pieceBytes);
    assert.equal(
      got.recs.map((r) => r.lsn),
      lsns,
      `pieces of ${pieceBytes}`,
    );
    assert.equal(got.ended, whole.ended, `pieces of ${pieceBytes}: the same end`);
    const paths = (rs: WalRecord[]): string[] => rs.filter((r) => r.rmid === RM_TBLSPC_ID).map((r) => r.mainData!.toString('latin1'));
    assert.equal(paths(got.recs), paths(whole.recs), `pieces of ${pieceBytes}: the wanted records' bytes`);
    assert.is(paths(got.recs).length, 3);
  }
});

test('pieces: after XLOG_SWITCH the rest of the segment is skipped; a piece out of order or not of whole pages is the end; a short segment ends at endOfSegment', () => {
  const { segs, lsns } = build(5, [filler(100), { rmid: RM_XLOG_ID, info: XLOG_SWITCH, main: Buffer.alloc(0) }, filler(100), tablespace(1, '/x')]);
  segs[0]!.fill(0x5a, 16 * BLCK + 24, 17 * BLCK);
  assert.equal(
    readInPieces(segs, 5, 4 * BLCK).recs.map((r) => r.lsn),
    lsns,
  );
  const fresh = (): WalRecordReader => new WalRecordReader({ segSize: SEG, startLsn: 0, wants: () => false });
  const { segs: two } = build(
    0,
    Array.from({ length: 300 }, () => filler(7000)),
  );
  const skip = fresh();
  assert.not.ok(skip.feedPiece(0, 0, two[0]!.subarray(0, 4 * BLCK), () => undefined).ended);
  const r = skip.feedPiece(0, 8 * BLCK, two[0]!.subarray(8 * BLCK, 12 * BLCK), () => undefined);
  assert.ok(r.ended && /out of order/.test(r.reason), JSON.stringify(r));
  const odd = fresh();
  const r2 = odd.feedPiece(0, 0, two[0]!.subarray(0, BLCK + 100), () => undefined);
  assert.ok(r2.ended && /whole number of 8192-byte pages/.test(r2.reason), JSON.stringify(r2));
  const short = fresh();
  assert.not.ok(short.feedPiece(0, 0, two[0]!.subarray(0, 4 * BLCK), () => undefined).ended);
  const r3 = short.endOfSegment(0, 4 * BLCK);
  assert.ok(r3.ended && /is 32768 bytes, not 1048576/.test(r3.reason), JSON.stringify(r3));
});

test('mainDataOf walks block headers to the main data', () => {
  const main = Buffer.from('hello');
  // one block reference (id 0) with 3 bytes of data and no image, own relfilenode, then main data
  const blockHdr = Buffer.concat([Buffer.from([0, 0x00, 3, 0]), Buffer.alloc(12), Buffer.alloc(4)]);
  const rec = Buffer.concat([Buffer.alloc(24), blockHdr, Buffer.from([255, main.length]), Buffer.from('abc'), main]);
  rec.writeUInt32LE(rec.length, 0);
  assert.is(mainDataOf(rec)?.toString(), 'hello');
});

test.run();
