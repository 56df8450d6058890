/**
 * Which WAL records a recovery to a given target replays, as PostgreSQL 15 decides it
 * (recoveryStopsBefore/recoveryStopsAfter in xlogrecovery.c, recovery_target_inclusive = true as
 * pgbk writes it). Pure: one record in, a verdict out. Where the rule cannot be exact it errs on
 * the side of "replayed" (a record counted as replayed can only make a check stricter).
 */

import { RM_TBLSPC_ID, RM_XACT_ID, RM_XLOG_ID, XLOG_RESTORE_POINT, XLOG_TBLSPC_CREATE, type WalRecord } from '../pg/wal-records.js';
import type { RecoveryTarget } from './target.js';

export type Verdict = 'replay' | 'replay-then-stop' | 'stop-before';

const XLOG_XACT_OPMASK = 0x70;
const XLOG_XACT_COMMIT = 0x00;
const XLOG_XACT_ABORT = 0x20;
const XLOG_XACT_COMMIT_PREPARED = 0x30;
const XLOG_XACT_ABORT_PREPARED = 0x40;
/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC). */
const PG_EPOCH_MICROS = 946_684_800_000_000n;

function isCommitOrAbort(r: { readonly rmid: number; readonly info: number }): boolean {
  if (r.rmid !== RM_XACT_ID) return false;
  const op = r.info & XLOG_XACT_OPMASK;
  return op === XLOG_XACT_COMMIT || op === XLOG_XACT_ABORT || op === XLOG_XACT_COMMIT_PREPARED || op === XLOG_XACT_ABORT_PREPARED;
}

/**
 * A decoded commit or abort record's time, in microseconds from the Unix epoch; undefined for any
 * other record (or one whose main data was not decoded).
 */
export function commitTimeMicros(r: WalRecord): bigint | undefined {
  if (!isCommitOrAbort(r) || r.mainData === undefined || r.mainData.length < 8) return undefined;
  return r.mainData.readBigInt64LE(0) + PG_EPOCH_MICROS;
}

/** Records whose main data the rule (or the tablespace check) needs decoded. */
export function wantedRecords(target: RecoveryTarget): (rmid: number, info: number) => boolean {
  return (rmid, info) => {
    if (rmid === RM_TBLSPC_ID) return info === XLOG_TBLSPC_CREATE;
    if (target.kind === 'time') return isCommitOrAbort({ rmid, info });
    if (target.kind === 'name') return rmid === RM_XLOG_ID && info === XLOG_RESTORE_POINT;
    return false;
  };
}

/** The verdict for each record in WAL order, for a recovery from a backup that ends at backupEndLsn. */
export function replayRule(target: RecoveryTarget, backupEndLsn: bigint): (r: WalRecord) => Verdict {
  switch (target.kind) {
    case 'latest':
      return () => 'replay';
    case 'lsn': {
      // Inclusive: recovery stops after the first record that starts at or after the target.
      const lsn = Number(target.lsn);
      return (r) => (r.lsn >= lsn ? 'replay-then-stop' : 'replay');
    }
    case 'immediate': {
      // Consistent once the backup's end is replayed; the first record reaching it is the last.
      const end = Number(backupEndLsn);
      return (r) => (r.endLsn >= end ? 'replay-then-stop' : 'replay');
    }
    case 'xid': {
      // A 64-bit epoch-qualified xid is compared on its low 32 bits, as PostgreSQL does. Prepared
      // transactions carry their xid in the record body: not decoded, so replay goes on (stricter).
      const xid = Number(BigInt(target.xid) & 0xffffffffn);
      return (r) => {
        if (!isCommitOrAbort(r)) return 'replay';
        const op = r.info & XLOG_XACT_OPMASK;
        return (op === XLOG_XACT_COMMIT || op === XLOG_XACT_ABORT) && r.xid === xid ? 'replay-then-stop' : 'replay';
      };
    }
    case 'time':
      // Stops before the first commit or abort whose time is after the target.
      return (r) => {
        const at = commitTimeMicros(r);
        return at !== undefined && at > target.micros ? 'stop-before' : 'replay';
      };
    case 'name':
      return (r) => {
        if (r.rmid !== RM_XLOG_ID || r.info !== XLOG_RESTORE_POINT || r.mainData === undefined || r.mainData.length < 9) return 'replay';
        const raw = r.mainData.subarray(8);
        const nul = raw.indexOf(0);
        return raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8') === target.name ? 'replay-then-stop' : 'replay';
      };
    default: {
      const never: never = target;
      return never;
    }
  }
}

export interface TablespaceCreation {
  readonly oid: string;
  /** The absolute directory recorded in the WAL (the source's own). */
  readonly location: string;
  readonly lsn: bigint;
  /** The record before it: a --target-lsn there replays up to it and stops before the creation. */
  readonly prevLsn: bigint;
}

/** xl_tblspc_create_rec { Oid ts_id; char ts_path[] }, or undefined for any other record. */
export function tablespaceCreation(r: WalRecord): TablespaceCreation | undefined {
  if (r.rmid !== RM_TBLSPC_ID || r.info !== XLOG_TBLSPC_CREATE || r.mainData === undefined || r.mainData.length < 5) return undefined;
  const raw = r.mainData.subarray(4);
  const nul = raw.indexOf(0);
  return {
    oid: String(r.mainData.readUInt32LE(0)),
    location: raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8'),
    lsn: BigInt(r.lsn),
    prevLsn: BigInt(r.prevLsn),
  };
}
