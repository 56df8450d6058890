/**
 * The long page header at the start of every WAL segment (XLogLongPageHeaderData in
 * xlog_internal.h), read to prove a file is WAL of the expected cluster before it enters the
 * archive. Pure: works on a Buffer.
 *
 *   offset  0  uint16 xlp_magic      WAL format version (XLOG_PAGE_MAGIC)
 *           2  uint16 xlp_info       flag bits; XLP_LONG_HEADER must be set on a segment's first page
 *           4  uint32 xlp_tli        timeline of the first record on the page
 *           8  uint64 xlp_pageaddr   LSN of this page: segno × segment size for the first page
 *          16  uint32 xlp_rem_len
 *          24  uint64 xlp_sysid      (MAXALIGN'd to 8) the cluster's system identifier
 *          32  uint32 xlp_seg_size
 *          36  uint32 xlp_xlog_blcksz
 *
 * PostgreSQL writes these in the host's byte order; every platform pgbk targets is little-endian.
 */

import { isPartialName, isValidSegmentSize, parseSegmentName, segmentNumber } from './wal-name.js';

export interface WalHeader {
  readonly magic: number;
  readonly info: number;
  readonly timeline: number;
  readonly pageAddr: bigint;
  /** Decimal string: a uint64 does not fit a JS number. */
  readonly systemIdentifier: string;
  readonly segSize: number;
  readonly blockSize: number;
}

export const LONG_HEADER_SIZE = 40;
export const XLP_LONG_HEADER = 0x0002;
/**
 * XLP_FIRST_IS_CONTRECORD | XLP_LONG_HEADER | XLP_BKP_REMOVABLE | XLP_FIRST_IS_OVERWRITE_CONTRECORD;
 * xlogreader rejects a page with any other bit set.
 */
const XLP_ALL_FLAGS = 0x000f;

/** XLOG_PAGE_MAGIC by major version (checked against each release's xlog_internal.h). */
export const WAL_PAGE_MAGIC: Readonly<Record<number, number>> = {
  13: 0xd106,
  14: 0xd10d,
  15: 0xd110,
  16: 0xd113,
  17: 0xd116,
  18: 0xd118,
};

const KNOWN_MAGICS: ReadonlySet<number> = new Set(Object.values(WAL_PAGE_MAGIC));

/** Major version that writes this page magic, or undefined when pgbk does not know it. */
export function majorVersionForMagic(magic: number): number | undefined {
  for (const [major, m] of Object.entries(WAL_PAGE_MAGIC)) if (m === magic) return Number(major);
  return undefined;
}

/** The long header, or undefined when the buffer is too short or the page has no long header. */
export function readWalHeader(buf: Buffer): WalHeader | undefined {
  if (buf.length < LONG_HEADER_SIZE) return undefined;
  const info = buf.readUInt16LE(2);
  if ((info & XLP_LONG_HEADER) === 0) return undefined;
  return {
    magic: buf.readUInt16LE(0),
    info,
    timeline: buf.readUInt32LE(4),
    pageAddr: buf.readBigUInt64LE(8),
    systemIdentifier: buf.readBigUInt64LE(24).toString(),
    segSize: buf.readUInt32LE(32),
    blockSize: buf.readUInt32LE(36),
  };
}

export interface SegmentExpectation {
  /** The catalog's cluster (server.json); when absent, any cluster is accepted. */
  readonly systemIdentifier?: string;
  /** The catalog's segment size; when absent, the header's own value is used. */
  readonly segSize?: number;
}

export type SegmentVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

function hex(n: number | bigint): string {
  return `0x${n.toString(16).toUpperCase()}`;
}

/**
 * Decide whether `buf` is a complete WAL segment named `name` (a 24-hex name or NAME.partial) of
 * the expected cluster. The checks are those PostgreSQL's own reader applies to a segment's first
 * page (XLogReaderValidatePageHeader), plus the file size, so a truncated copy, a foreign file or
 * another cluster's WAL never reaches the archive.
 */
export function validateSegment(name: string, buf: Buffer, expected: SegmentExpectation): SegmentVerdict {
  const base = isPartialName(name) ? name.slice(0, 24) : name;
  const parsed = parseSegmentName(base);
  if (parsed === undefined) return { ok: false, reason: `"${name}" is not a WAL segment name` };
  if (buf.length < LONG_HEADER_SIZE) {
    return { ok: false, reason: `file is ${buf.length} bytes: too short to be a WAL segment` };
  }
  const magic = buf.readUInt16LE(0);
  if (!KNOWN_MAGICS.has(magic)) {
    return { ok: false, reason: `not PostgreSQL WAL of a known version (page magic ${hex(magic)})` };
  }
  const header = readWalHeader(buf);
  if (header === undefined) return { ok: false, reason: 'first page lacks the long header (XLP_LONG_HEADER)' };
  if ((header.info & ~XLP_ALL_FLAGS) !== 0) {
    return { ok: false, reason: `invalid page info bits ${hex(header.info)}` };
  }
  if (!isValidSegmentSize(header.segSize)) {
    return { ok: false, reason: `header claims an impossible segment size ${header.segSize}` };
  }
  if (expected.segSize !== undefined && header.segSize !== expected.segSize) {
    return {
      ok: false,
      reason: `segment size in header is ${header.segSize} bytes, the catalog's cluster uses ${expected.segSize}`,
    };
  }
  const segSize = header.segSize;
  if (buf.length !== segSize) {
    return { ok: false, reason: `file is ${buf.length} bytes, a segment is ${segSize} (truncated or padded copy)` };
  }
  const bs = header.blockSize;
  if (bs < 1024 || bs > 65536 || (bs & (bs - 1)) !== 0 || segSize % bs !== 0) {
    return { ok: false, reason: `header claims an impossible WAL block size ${bs}` };
  }
  let segno: number;
  try {
    segno = segmentNumber(base, segSize);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  const wantAddr = BigInt(segno) * BigInt(segSize);
  if (header.pageAddr !== wantAddr) {
    return {
      ok: false,
      reason: `first page address ${hex(header.pageAddr)} does not match the file name (expected ${hex(wantAddr)})`,
    };
  }
  // The first segment of a new timeline starts as a copy of the old timeline's segment, so its
  // first page may carry the older timeline; a newer one than the file name's is impossible.
  if (header.timeline < 1 || header.timeline > parsed.timeline) {
    return { ok: false, reason: `page timeline ${header.timeline} does not fit file timeline ${parsed.timeline}` };
  }
  if (expected.systemIdentifier !== undefined && header.systemIdentifier !== expected.systemIdentifier) {
    return {
      ok: false,
      reason: `WAL belongs to cluster ${header.systemIdentifier}, this catalog holds cluster ${expected.systemIdentifier}`,
    };
  }
  return { ok: true };
}
