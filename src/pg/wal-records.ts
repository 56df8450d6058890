/**
 * A reader of WAL records (xlogreader.c, PostgreSQL 15's format), just enough to see which records
 * a recovery will replay: every record's LSN, resource manager and info byte, and the main data of
 * the records a caller asks for. Pure: segments' bytes in, records out (the caller reads files).
 *
 * Layout (xlog_internal.h, xlogrecord.h; little-endian, MAXALIGN 8):
 *   page header   24 bytes (40 on a segment's first page): magic, info, tli, pageaddr, rem_len
 *   XLogRecord    uint32 xl_tot_len, uint32 xl_xid, uint64 xl_prev, uint8 xl_info, uint8 xl_rmid,
 *                 2 pad, uint32 xl_crc (CRC-32C of the record after the header, then of the header
 *                 up to xl_crc); then block headers, block data, and the main data last
 * A record starts MAXALIGN'd and continues on the next page(s) after their headers (which then say
 * XLP_FIRST_IS_CONTRECORD and how many bytes remain). After an XLOG_SWITCH record the rest of the
 * segment is unused. Like PostgreSQL, a record that does not make sense (zero length, a page that
 * is not where it should be, a bad CRC on a decoded record) is the end of WAL.
 */

const SHORT_PAGE_HEADER = 24;
const LONG_PAGE_HEADER = 40;
const RECORD_HEADER = 24;
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;

export const RM_XLOG_ID = 0;
export const RM_XACT_ID = 1;
export const RM_TBLSPC_ID = 5;
export const XLOG_SWITCH = 0x40;
export const XLOG_RESTORE_POINT = 0x70;
export const XLOG_TBLSPC_CREATE = 0x00;
/** The low four bits of xl_info belong to the WAL machinery, the high four to the resource manager. */
export const XLR_RMGR_INFO_MASK = 0xf0;

/**
 * LSNs are plain numbers here: exact below 2^53 (8 PiB of WAL), and a scan of millions of records
 * with BigInt arithmetic costs seconds more. WAL beyond that ends the scan (reported as an end).
 */
export interface WalRecord {
  readonly lsn: number;
  /** LSN just past the record (unaligned). */
  readonly endLsn: number;
  /** xl_prev: the LSN of the record before it. */
  readonly prevLsn: number;
  readonly totLen: number;
  readonly xid: number;
  readonly rmid: number;
  /** The resource manager's bits of xl_info (the high four). */
  readonly info: number;
  /**
   * The main data, for records the caller wanted (and whose CRC is right); else undefined. A view
   * of the fed segment: copy what must outlive the onRecord call when segments share a buffer.
   */
  readonly mainData?: Buffer | undefined;
}

export interface WalReaderOptions {
  readonly segSize: number;
  /** Records before this LSN are not reported (recovery starts at the backup's redo point). */
  readonly startLsn: number;
  /** Which records to assemble and decode (their bytes are collected across pages). */
  readonly wants: (rmid: number, info: number) => boolean;
  /**
   * Check each wanted record's CRC (default true). A caller reading only archived whole segments,
   * whose stored frames carry their own checksums, may skip it: in JavaScript it costs ~60 ms per
   * 16 MiB segment when every record is wanted, ten times the rest of the walk.
   */
  readonly checkCrc?: boolean;
  /**
   * Instead of onRecord's object, each wanted record as where it lies: buf[off, off + totLen)
   * (valid during the call only), its LSN, resource manager and info bits. For a reader of every
   * record (hundreds of thousands per scan), without an object and a view per record.
   */
  readonly raw?: (buf: Buffer, off: number, totLen: number, lsn: number, rmid: number, info: number) => void;
}

export type FeedResult = { readonly ended: false } | { readonly ended: true; readonly at: number; readonly reason: string };

const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32cUpdate(crc: number, buf: Buffer, from: number, to: number): number {
  let c = crc;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/** CRC-32C as PostgreSQL computes xl_crc. */
export function recordCrc(record: Buffer): number {
  let c = crc32cUpdate(0xffffffff, record, RECORD_HEADER, record.length);
  c = crc32cUpdate(c, record, 0, 20);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * DecodeXLogRecord's walk of the block headers of the record at record[from, to): each block
 * reference to `onBlock` (when given: the relation file's tablespace, database and number, the
 * fork — 0 main, 1 free space map, 2 visibility map, 3 init — and the block), then where its main
 * data starts (it runs to `to`), or -1 when the headers are malformed (they do not add up to the
 * record's length). No allocation: a scan of every record calls it hundreds of thousands of times.
 */
export function walkRecordAt(
  record: Buffer,
  from: number,
  to: number,
  onBlock?: (spcOid: number, dbOid: number, relNumber: number, forkNum: number, block: number) => void,
): number {
  let p = from + RECORD_HEADER;
  let payload = 0;
  let mainLen = 0;
  let spcOid = -1;
  let dbOid = -1;
  let relNumber = -1;
  // As DecodeXLogRecord: headers go on while more bytes remain than the block data announced (a
  // record may end with block data and no main data: a full-page image's XLOG_FPI).
  while (to - p > payload) {
    const id = record[p]!;
    p += 1;
    if (id === 255) {
      if (p + 1 > to) return -1;
      mainLen = record[p]!;
      p += 1;
      break;
    } else if (id === 254) {
      if (p + 4 > to) return -1;
      mainLen = u32(record, p);
      p += 4;
      break;
    } else if (id === 253) {
      p += 2; // XLR_BLOCK_ID_ORIGIN: RepOriginId
    } else if (id === 252) {
      p += 4; // XLR_BLOCK_ID_TOPLEVEL_XID
    } else if (id <= 32) {
      if (p + 3 > to) return -1;
      const forkFlags = record[p]!;
      const dataLen = u16(record, p + 1);
      p += 3;
      payload += dataLen;
      if ((forkFlags & 0x10) !== 0) {
        // BKPBLOCK_HAS_IMAGE: XLogRecordBlockImageHeader (length, hole_offset, bimg_info)
        if (p + 5 > to) return -1;
        const imgLen = u16(record, p);
        const bimgInfo = record[p + 4]!;
        p += 5;
        payload += imgLen;
        // BKPIMAGE_HAS_HOLE with any BKPIMAGE_COMPRESS_* bit: XLogRecordBlockCompressHeader
        if ((bimgInfo & 0x01) !== 0 && (bimgInfo & 0x1c) !== 0) p += 2;
      }
      if ((forkFlags & 0x80) === 0) {
        // not BKPBLOCK_SAME_REL: RelFileNode {spcNode, dbNode, relNode}
        if (p + 12 > to) return -1;
        spcOid = u32(record, p);
        dbOid = u32(record, p + 4);
        relNumber = u32(record, p + 8);
        p += 12;
      } else if (relNumber < 0) {
        return -1; // BKPBLOCK_SAME_REL on the first block: no relation to be the same as
      }
      if (p + 4 > to) return -1;
      const block = u32(record, p);
      p += 4;
      onBlock?.(spcOid, dbOid, relNumber, forkFlags & 0x0f, block);
    } else {
      return -1;
    }
  }
  const start = p + payload;
  return start + mainLen === to ? start : -1;
}

/** The main data of an assembled record (DecodeXLogRecord's block-header walk), or undefined if malformed. */
export function mainDataOf(record: Buffer): Buffer | undefined {
  const mainAt = walkRecordAt(record, 0, record.length);
  return mainAt < 0 ? undefined : record.subarray(mainAt);
}

interface Partial {
  readonly lsn: number;
  readonly totLen: number;
  got: number;
  /** Bytes collected in the reader's assembly buffer: the header until it is known, then the whole record if wanted. */
  collected: number;
  want: boolean | undefined;
}

const SWITCHED = Symbol('switched');
type Completion = FeedResult | typeof SWITCHED | undefined;

/**
 * Feed contiguous segments in order (segment numbers must follow each other); `onRecord` is called
 * for every complete record at or after startLsn. Once the end of WAL is met, feeding stops and
 * every later feed returns the same end.
 */
export class WalRecordReader {
  private readonly opts: WalReaderOptions;
  private partial: Partial | undefined;
  /** Where a record spanning pages is assembled (its bytes are valid during onRecord only). */
  private asm: Buffer = Buffer.alloc(0);
  /** True until the first page was read: a continuation there belongs to a record not replayed. */
  private fresh = true;
  /** Bytes still to skip of that record, when it spans more than the first page. */
  private skipLeft = 0;
  /** The previous record's LSN, to check xl_prev as PostgreSQL does. */
  private prevLsn: number | undefined;
  private expectSegno: number | undefined;
  /** The WAL page size, from the long header of the segment being read. */
  private blcksz = 0;
  /** Where the next piece of the segment being read starts. */
  private pieceAt = 0;
  /** The segment whose XLOG_SWITCH was read: its later pieces are skipped. */
  private switchedIn: number | undefined;
  private endedAt: FeedResult | undefined;

  constructor(opts: WalReaderOptions) {
    this.opts = opts;
  }

  get ended(): FeedResult | undefined {
    return this.endedAt;
  }

  private end(at: number, reason: string): FeedResult {
    this.endedAt = { ended: true, at, reason };
    return this.endedAt;
  }

  /**
   * Read the records of segment `segno`. A record's `mainData` is a view of `seg` (or of a copy)
   * valid during `onRecord` only; once feed returns the reader holds nothing of `seg` — the part of
   * a record that continues in the next segment is copied — so a caller may decode the next
   * segment into the same buffer.
   */
  feed(segno: number, seg: Buffer, onRecord: (r: WalRecord) => void): FeedResult {
    const { segSize } = this.opts;
    if (this.endedAt === undefined && seg.length < segSize) {
      return this.place(segno) ?? this.end(segno * segSize, `segment ${segno} is ${seg.length} bytes, not ${segSize}`);
    }
    return this.feedPiece(segno, 0, seg.length > segSize ? seg.subarray(0, segSize) : seg, onRecord);
  }

  /**
   * Read the records of one piece of segment `segno`, the content from `offset` on: the pieces of a
   * segment come in order, each a whole number of WAL pages but the last, which ends the segment
   * (after the last, endOfSegment). Like feed, nothing of `piece` is kept once this returns.
   */
  feedPiece(segno: number, offset: number, piece: Buffer, onRecord: (r: WalRecord) => void): FeedResult {
    // The part of a record that continues past the piece is in the reader's own assembly buffer.
    return this.readPages(segno, offset, piece, onRecord);
  }

  /** After the pieces of segment `segno`, `length` bytes in all: a short segment is the end of WAL. */
  endOfSegment(segno: number, length: number): FeedResult {
    if (this.endedAt !== undefined) return this.endedAt;
    const { segSize } = this.opts;
    return length < segSize ? this.end(segno * segSize, `segment ${segno} is ${length} bytes, not ${segSize}`) : { ended: false };
  }

  /** The checks of a new segment's number; sets the next one expected. An end when it is wrong. */
  private place(segno: number): FeedResult | undefined {
    const { segSize } = this.opts;
    const segStart = segno * segSize;
    if (segStart + segSize > Number.MAX_SAFE_INTEGER) return this.end(segStart, 'WAL positions beyond 2^53 are not supported');
    if (this.expectSegno !== undefined && segno !== this.expectSegno) {
      return this.end(segStart, `segment ${segno} does not follow segment ${this.expectSegno - 1}`);
    }
    this.expectSegno = segno + 1;
    return undefined;
  }

  private readPages(segno: number, offset: number, seg: Buffer, onRecord: (r: WalRecord) => void): FeedResult {
    if (this.endedAt !== undefined) return this.endedAt;
    const { segSize } = this.opts;
    const segStart = segno * segSize;
    if (offset === 0) {
      const wrong = this.place(segno);
      if (wrong !== undefined) return wrong;
      this.blcksz = seg.length >= LONG_PAGE_HEADER ? u32(seg, 36) : 0;
      this.switchedIn = undefined;
      this.pieceAt = 0;
    } else if (segno !== (this.expectSegno ?? 0) - 1 || offset !== this.pieceAt) {
      return this.end(segStart + offset, `piece at ${offset} of segment ${segno} is out of order`);
    }
    this.pieceAt = offset + seg.length;
    // After XLOG_SWITCH the rest of the segment holds no records.
    if (this.switchedIn === segno) return { ended: false };
    const blcksz = this.blcksz;
    if (blcksz < 1024 || blcksz > 65536 || (blcksz & (blcksz - 1)) !== 0 || segSize % blcksz !== 0) {
      return this.end(segStart, `segment ${segno} has no valid long page header`);
    }
    if (offset + seg.length > segSize || (offset + seg.length < segSize && seg.length % blcksz !== 0)) {
      return this.end(segStart + offset, `piece at ${offset} of segment ${segno} is not a whole number of ${blcksz}-byte pages`);
    }
    for (let page = 0; page + blcksz <= seg.length; page += blcksz) {
      const pageLsn = segStart + offset + page;
      const info = u16(seg, page + 2);
      const hdr = (info & XLP_LONG_HEADER) !== 0 ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER;
      if (
        u32(seg, page + 8) !== pageLsn % 0x100000000 ||
        u32(seg, page + 12) !== Math.floor(pageLsn / 0x100000000) ||
        (offset + page === 0) !== (hdr === LONG_PAGE_HEADER)
      ) {
        return this.end(pageLsn, `the page at ${pageLsn} was not written for that position`);
      }
      const remLen = u32(seg, page + 16);
      const isCont = (info & XLP_FIRST_IS_CONTRECORD) !== 0;
      const pageEnd = page + blcksz;
      let p = page + hdr;
      if (this.partial !== undefined) {
        const part = this.partial;
        const left = part.totLen - part.got;
        if (!isCont || remLen !== left) return this.end(pageLsn, `no continuation of the record at ${part.lsn}`);
        const take = Math.min(left, pageEnd - p);
        this.collect(part, seg, p, take);
        if (part.got < part.totLen) continue;
        this.partial = undefined;
        const r = this.complete(part.lsn, part.totLen, this.asm, 0, part.want === true, onRecord);
        if (r === SWITCHED) return this.switched(segno);
        if (r !== undefined) return r;
        p += align8(take);
      } else if (this.fresh || this.skipLeft > 0) {
        // The scan starts inside a record that began before it: skip the rest of that record.
        const left = this.fresh ? (isCont ? remLen : 0) : this.skipLeft;
        this.fresh = false;
        const take = Math.min(left, pageEnd - p);
        this.skipLeft = left - take;
        if (this.skipLeft > 0) continue;
        p += align8(take);
      }
      // Records starting on this page (the last one may continue on the next page).
      while (p < pageEnd) {
        const lsn = segStart + offset + p;
        const totLen = u32(seg, p);
        if (totLen === 0) return this.end(lsn, 'zeroes (the end of the WAL written)');
        if (totLen < RECORD_HEADER) return this.end(lsn, `record length ${totLen} is too short`);
        if (totLen > 0x3fffffff) return this.end(lsn, `record length ${totLen} is too long`);
        if (totLen > pageEnd - p) {
          // Continues on the next page: collect its pieces.
          const part: Partial = { lsn, totLen, got: 0, collected: 0, want: undefined };
          this.collect(part, seg, p, pageEnd - p);
          this.partial = part;
          break;
        }
        // The common case, the whole record on this page: no copy unless it is wanted.
        const want = this.opts.wants(seg[p + 17]!, seg[p + 16]! & XLR_RMGR_INFO_MASK);
        const r = this.complete(lsn, totLen, seg, p, want, onRecord);
        if (r === SWITCHED) return this.switched(segno);
        if (r !== undefined) return r;
        p += align8(totLen);
      }
    }
    return { ended: false };
  }

  private switched(segno: number): FeedResult {
    this.switchedIn = segno;
    return { ended: false };
  }

  /**
   * Copy a piece of the record being assembled into the assembly buffer (reused from record to
   * record: a fresh buffer per record spanning pages cost more than the rest of a scan of every
   * record on this machine kind). Only the header is kept of a record not wanted.
   */
  private collect(part: Partial, seg: Buffer, from: number, n: number): void {
    part.got += n;
    if (part.want === false) return;
    const need = part.collected + n;
    if (need > this.asm.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, part.want === true ? part.totLen : 0, 2 * this.asm.length, 64 * 1024));
      this.asm.copy(bigger, 0, 0, part.collected);
      this.asm = bigger;
    }
    seg.copy(this.asm, part.collected, from, from + n);
    part.collected = need;
    if (part.want === undefined && part.collected >= RECORD_HEADER) part.want = this.opts.wants(this.asm[17]!, this.asm[16]! & XLR_RMGR_INFO_MASK);
  }

  /**
   * Check and report a complete record whose bytes start at buf[off] (the whole record is there
   * when `want`, else at least its header); SWITCHED after an XLOG_SWITCH; an end on a bad record.
   */
  private complete(lsn: number, totLen: number, buf: Buffer, off: number, want: boolean, onRecord: (r: WalRecord) => void): Completion {
    const rmid = buf[off + 17]!;
    const info = buf[off + 16]!;
    const prev = u32(buf, off + 12) * 0x100000000 + u32(buf, off + 8);
    if (this.prevLsn !== undefined && prev !== this.prevLsn) {
      return this.end(lsn, `the record at ${lsn} does not point back to the previous one`);
    }
    this.prevLsn = lsn;
    const raw = this.opts.raw;
    if (raw !== undefined && want) {
      if (this.opts.checkCrc !== false && recordCrc(buf.subarray(off, off + totLen)) !== u32(buf, off + 20))
        return this.end(lsn, `the record at ${lsn} has a bad CRC`);
      if (lsn >= this.opts.startLsn) raw(buf, off, totLen, lsn, rmid, info & XLR_RMGR_INFO_MASK);
      if (rmid === RM_XLOG_ID && (info & XLR_RMGR_INFO_MASK) === XLOG_SWITCH) return SWITCHED;
      return undefined;
    }
    let mainData: Buffer | undefined;
    if (want) {
      // A record assembled across pages is copied out of the assembly buffer: its main data stays
      // what it was before (a view of the fed segment, or of its own bytes).
      const bytes = buf === this.asm ? Buffer.from(buf.subarray(off, off + totLen)) : buf.subarray(off, off + totLen);
      if (this.opts.checkCrc !== false && recordCrc(bytes) !== u32(bytes, 20)) return this.end(lsn, `the record at ${lsn} has a bad CRC`);
      mainData = mainDataOf(bytes);
    }
    if (lsn >= this.opts.startLsn) {
      // One object shape for every record (no spreads): hundreds of thousands per scan.
      onRecord({ lsn, endLsn: lsn + totLen, prevLsn: prev, totLen, xid: u32(buf, off + 4), rmid, info: info & XLR_RMGR_INFO_MASK, mainData });
    }
    if (rmid === RM_XLOG_ID && (info & XLR_RMGR_INFO_MASK) === XLOG_SWITCH) return SWITCHED;
    return undefined;
  }
}

// Byte arithmetic instead of Buffer#readUInt32LE: these run for every record, and the Buffer
// methods stay slow until V8 optimises them (seconds over a few segments on a cold start).
function u32(b: Buffer, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
}

function u16(b: Buffer, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
