/**
 * Which relation blocks a stretch of WAL changed — what PostgreSQL 17's WAL summaries record, read
 * here from PostgreSQL 15's WAL itself. An incremental `ssh` backup uses it to leave unread the
 * chunks of changed relation files that the WAL since the previous backup's start never touched.
 * Pure: records in (pg/wal-records.ts), a summary out.
 *
 * Why that is safe (the reasoning of PostgreSQL 17's incremental backup): with wal_level replica
 * or logical, every change to a block of a permanent relation's main fork is WAL-logged with a
 * reference to that block, except
 *   - hint bits (losing them is harmless: they are set again on the next read),
 *   - relation files made whole without per-block records: a new relation fork (XLOG_SMGR_CREATE),
 *     a truncation (XLOG_SMGR_TRUNCATE: blocks from the new end on may come back as zeroes), a
 *     database created by copying its directory (XLOG_DBASE_CREATE_FILE_COPY), and, as in
 *     PostgreSQL 17 for extra safety, any other database creation or drop and relations dropped at
 *     commit or abort: all of these mark the relation (or the whole database) "changed from block
 *     N on" (its limit),
 *   - anything written while wal_level was minimal: a summary that meets wal_level minimal
 *     (XLOG_PARAMETER_CHANGE) is unusable, as is one that meets the end of a recovery.
 * A block that no record references and that lies below its relation's limit is therefore, on
 * disk at this backup's start, what it was when the previous backup copied it (that copy was made
 * after the previous backup's start, and every write of the block since then is in this WAL).
 * The free space map is not WAL-logged and the visibility map is changed as a side effect of heap
 * records: only main forks are summarized here, and the other forks are read as before.
 */

import { BLOCK_SET_PAGE_BYTES, BlockSet, NO_BLOCKS, type ReadonlyBlockSet } from './block-set.js';
import { RM_XACT_ID, RM_XLOG_ID, walkRecordAt } from './wal-records.js';

export const RM_SMGR_ID = 2;
export const RM_DBASE_ID = 4;
const XLOG_PARAMETER_CHANGE = 0x60;
const XLOG_END_OF_RECOVERY = 0x90;
const XLOG_SMGR_CREATE = 0x10;
const XLOG_SMGR_TRUNCATE = 0x20;
const SMGR_TRUNCATE_HEAP = 0x0001;
const XLOG_DBASE_CREATE_FILE_COPY = 0x00;
const XLOG_DBASE_CREATE_WAL_LOG = 0x10;
const XLOG_DBASE_DROP = 0x20;
const XLOG_XACT_OPMASK = 0x70;
const XLOG_XACT_HAS_INFO = 0x80;
const XLOG_XACT_COMMIT = 0x00;
const XLOG_XACT_ABORT = 0x20;
const XLOG_XACT_COMMIT_PREPARED = 0x30;
const XLOG_XACT_ABORT_PREPARED = 0x40;
const XACT_XINFO_HAS_DBINFO = 1 << 0;
const XACT_XINFO_HAS_SUBXACTS = 1 << 1;
const XACT_XINFO_HAS_RELFILENODES = 1 << 2;
const WAL_LEVEL_MINIMAL = 0;
const MAIN_FORKNUM = 0;

/**
 * Distinct changed blocks kept before the summary gives up (8 M blocks: 64 GiB of 8 KiB pages):
 * past that, reading the changed files costs less than tracking them.
 */
export const MAX_TRACKED_BLOCKS = 8 * 1024 * 1024;
/**
 * Memory of the block sets' pages kept before the summary gives up (64 MiB): blocks scattered one
 * by one over very many relations cost a page each.
 */
export const MAX_TRACKED_BYTES = 64 * 1024 * 1024;

/** What the WAL says about one relation's main fork. */
export type RelationChanges =
  | { readonly kind: 'unchanged' }
  /** Blocks referenced; every block from `limit` on counts as changed too (undefined: none). */
  | { readonly kind: 'blocks'; readonly blocks: ReadonlyBlockSet; readonly limit: number | undefined };

const key = (spc: number, db: number, rel: number): string => `${spc}/${db}/${rel}`;

/** What the special records' messages need of a record. */
interface RecordId {
  readonly lsn: number;
  readonly rmid: number;
  readonly info: number;
}

export class WalBlockSummary {
  private readonly blocks = new Map<string, BlockSet>();
  private readonly limits = new Map<string, number>();
  /** "spc/db" of databases created or dropped in the WAL read: every relation there is new. */
  private readonly wholeDatabases = new Set<string>();
  private tracked = 0;
  /** Pages of all block sets. */
  private pages = 0;
  private reason: string | undefined;
  /** Records summarized. */
  records = 0;

  constructor(
    private readonly maxBlocks = MAX_TRACKED_BLOCKS,
    private readonly maxBytes = MAX_TRACKED_BYTES,
  ) {}

  /** Why the summary cannot be used (then nothing may be skipped), or undefined. */
  get unusable(): string | undefined {
    return this.reason;
  }

  private giveUp(why: string): void {
    this.reason ??= why;
  }

  /** Add the record at buf[off, off + totLen) (WalReaderOptions.raw's arguments). */
  readonly addRaw = (buf: Buffer, off: number, totLen: number, lsn: number, rmid: number, info: number): void => {
    if (this.reason !== undefined) return;
    this.records++;
    const mainAt = walkRecordAt(buf, off, off + totLen, this.onBlock);
    if (mainAt < 0) {
      this.giveUp(`the record at ${lsn} does not decode`);
      return;
    }
    if (rmid !== RM_XLOG_ID && rmid !== RM_SMGR_ID && rmid !== RM_DBASE_ID && rmid !== RM_XACT_ID) return;
    const rec = { lsn, rmid, info };
    const main = buf.subarray(mainAt, off + totLen);
    if (rmid === RM_XLOG_ID) this.xlog(rec, main);
    else if (rmid === RM_SMGR_ID) this.smgr(rec, main);
    else if (rmid === RM_DBASE_ID) this.dbase(rec, main);
    else this.xact(rec, main);
  };

  /** What the WAL read changed in relation (spc, db, rel)'s main fork. */
  changes(spcOid: number, dbOid: number, relNumber: number): RelationChanges {
    const k = key(spcOid, dbOid, relNumber);
    const whole = this.wholeDatabases.has(`${spcOid}/${dbOid}`);
    const limit = whole ? 0 : this.limits.get(k);
    const blocks = this.blocks.get(k);
    if (blocks === undefined && limit === undefined) return { kind: 'unchanged' };
    return { kind: 'blocks', blocks: blocks ?? NO_BLOCKS, limit };
  }

  /** The relation of the last block reference (records in a row mostly touch the same one). */
  private last: { spc: number; db: number; rel: number; set: BlockSet } | undefined;

  private readonly onBlock = (spc: number, db: number, rel: number, forkNum: number, block: number): void => {
    if (forkNum !== MAIN_FORKNUM) return;
    let last = this.last;
    if (last === undefined || last.rel !== rel || last.db !== db || last.spc !== spc) {
      const k = key(spc, db, rel);
      let set = this.blocks.get(k);
      if (set === undefined) {
        set = new BlockSet();
        this.blocks.set(k, set);
      }
      last = { spc, db, rel, set };
      this.last = last;
    }
    const set = last.set;
    const pagesBefore = set.pageCount;
    if (!set.add(block)) return;
    if (++this.tracked > this.maxBlocks) this.giveUp(`more than ${this.maxBlocks} blocks changed`);
    if (set.pageCount !== pagesBefore && ++this.pages * BLOCK_SET_PAGE_BYTES > this.maxBytes)
      this.giveUp(`the changed blocks are scattered over more than ${this.maxBytes / 1048576} MiB of bitmaps`);
  };

  private setLimit(spc: number, db: number, rel: number, block: number): void {
    const k = key(spc, db, rel);
    const old = this.limits.get(k);
    if (old === undefined || block < old) this.limits.set(k, block);
  }

  private short(rec: RecordId, main: Buffer, need: number): boolean {
    if (main.length >= need) return false;
    this.giveUp(`the record at ${rec.lsn} (resource manager ${rec.rmid}, info 0x${rec.info.toString(16)}) is too short`);
    return true;
  }

  /** The int count at main[at] (of `what`), or undefined when it is not there or negative (then unusable). */
  private countAt(rec: RecordId, main: Buffer, at: number, what: string): number | undefined {
    if (this.short(rec, main, at + 4)) return undefined;
    const n = main.readInt32LE(at);
    if (n >= 0) return n;
    this.giveUp(`the record at ${rec.lsn} (resource manager ${rec.rmid}, info 0x${rec.info.toString(16)}) counts ${n} ${what}`);
    return undefined;
  }

  private xlog(rec: RecordId, main: Buffer): void {
    if (rec.info === XLOG_PARAMETER_CHANGE) {
      // xl_parameter_change: MaxConnections, max_worker_processes, max_wal_senders,
      // max_prepared_xacts, max_locks_per_xact, wal_level (ints), …
      if (this.short(rec, main, 24)) return;
      if (main.readInt32LE(20) === WAL_LEVEL_MINIMAL) this.giveUp(`wal_level was minimal at ${rec.lsn}: changes then were not WAL-logged`);
    } else if (rec.info === XLOG_END_OF_RECOVERY) {
      this.giveUp(`a recovery ended at ${rec.lsn}`);
    }
  }

  private smgr(rec: RecordId, main: Buffer): void {
    if (rec.info === XLOG_SMGR_CREATE) {
      // xl_smgr_create: RelFileNode {spc, db, rel}, ForkNumber
      if (this.short(rec, main, 16)) return;
      if (main.readInt32LE(12) === MAIN_FORKNUM) this.setLimit(main.readUInt32LE(0), main.readUInt32LE(4), main.readUInt32LE(8), 0);
    } else if (rec.info === XLOG_SMGR_TRUNCATE) {
      // xl_smgr_truncate: BlockNumber blkno, RelFileNode {spc, db, rel}, int flags
      if (this.short(rec, main, 20)) return;
      if ((main.readInt32LE(16) & SMGR_TRUNCATE_HEAP) !== 0)
        this.setLimit(main.readUInt32LE(4), main.readUInt32LE(8), main.readUInt32LE(12), main.readUInt32LE(0));
    }
  }

  private dbase(rec: RecordId, main: Buffer): void {
    if (rec.info === XLOG_DBASE_CREATE_FILE_COPY || rec.info === XLOG_DBASE_CREATE_WAL_LOG) {
      // {db_id, tablespace_id, …}
      if (this.short(rec, main, 8)) return;
      this.wholeDatabases.add(`${main.readUInt32LE(4)}/${main.readUInt32LE(0)}`);
    } else if (rec.info === XLOG_DBASE_DROP) {
      // xl_dbase_drop_rec: db_id, int ntablespaces, Oid tablespace_ids[]
      const n = this.countAt(rec, main, 4, 'tablespaces');
      if (n === undefined || this.short(rec, main, 8 + 4 * n)) return;
      const db = main.readUInt32LE(0);
      for (let i = 0; i < n; i++) this.wholeDatabases.add(`${main.readUInt32LE(8 + 4 * i)}/${db}`);
    } else {
      this.giveUp(`unknown database record 0x${rec.info.toString(16)} at ${rec.lsn}`);
    }
  }

  /** Relations dropped at commit or abort (ParseCommitRecord's layout up to the relfilenodes). */
  private xact(rec: RecordId, main: Buffer): void {
    const op = rec.info & XLOG_XACT_OPMASK;
    if (op !== XLOG_XACT_COMMIT && op !== XLOG_XACT_ABORT && op !== XLOG_XACT_COMMIT_PREPARED && op !== XLOG_XACT_ABORT_PREPARED) return;
    if ((rec.info & XLOG_XACT_HAS_INFO) === 0) return; // xact_time alone: nothing dropped
    if (this.short(rec, main, 12)) return;
    const xinfo = main.readUInt32LE(8);
    let p = 12;
    if ((xinfo & XACT_XINFO_HAS_DBINFO) !== 0) p += 8;
    if ((xinfo & XACT_XINFO_HAS_SUBXACTS) !== 0) {
      const nsub = this.countAt(rec, main, p, 'subtransactions');
      if (nsub === undefined) return;
      p += 4 + 4 * nsub;
    }
    if ((xinfo & XACT_XINFO_HAS_RELFILENODES) === 0) return;
    const n = this.countAt(rec, main, p, 'relations');
    p += 4;
    if (n === undefined || this.short(rec, main, p + 12 * n)) return;
    for (let i = 0; i < n; i++, p += 12) this.setLimit(main.readUInt32LE(p), main.readUInt32LE(p + 4), main.readUInt32LE(p + 8), 0);
  }
}
