/**
 * The scan of the WAL a restore will replay, before anything is written. It reads every archived
 * segment recovery will read, from the backup's redo point to where recovery stops
 * (replay-rule.ts), and decides two things:
 *
 * - Tablespaces created in that WAL. PostgreSQL's replay of CREATE TABLESPACE links
 *   pg_tblspc/<oid> to the absolute path recorded in the WAL — the source's own directory — so a
 *   restore on the source's host would replay into, and once promoted write into (and DROP into),
 *   the production tablespace (PostgreSQL's documentation warns of it). Relocating it is not
 *   possible: the path is in the WAL, not in anything pgbk writes. Any found refuses the restore
 *   unless the user says the paths are safe where the copy runs (another host:
 *   --allow-new-tablespaces).
 * - A time target before a hole in the archive (checkStopBeforeGap): the choice of backup
 *   (choose-backup.ts) cannot know whether recovery stops before the first missing segment; the
 *   scan finds the record that stops it, and the restore goes on only if that lies before the hole.
 *
 * pgbk's own reader (pg/wal-records.ts) rather than pg_waldump: archived segments are compressed,
 * and pg_waldump would need them decompressed to a directory, one run per timeline, and an end of
 * WAL told apart from an error; reading them in-process costs about the decompression.
 */

import { decodeWalPieces, type FetchedWal, fetchArchivedWal, storedBufferFor } from '../catalog/wal-archive.js';
import { PgbkError } from '../errors.js';
import { plural } from '../lib/plural.js';
import { formatLsn, parseLsn } from '../pg/lsn.js';
import { segmentNameFrom, segmentNumber } from '../pg/wal-name.js';
import { type FeedResult, WalRecordReader, type WalRecord } from '../pg/wal-records.js';
import type { DoneBackup } from '../model/types.js';
import type { Choice } from './choose-backup.js';
import { commitTimeMicros, replayRule, tablespaceCreation, wantedRecords, type TablespaceCreation } from './replay-rule.js';
import { describeTarget, formatMicros, type RecoveryTarget } from './target.js';
import { timelineForSegment } from './timeline-history.js';

export interface FoundTablespace extends TablespaceCreation {
  readonly segment: string;
}

export interface WalScan {
  readonly found: readonly FoundTablespace[];
  readonly segments: number;
  readonly seconds: number;
  /** The recovery target was met in the archived WAL (always true for latest and immediate). */
  readonly targetReached: boolean;
  /** The newest commit or abort time read (time targets only: their records are decoded). */
  readonly lastCommitMicros?: bigint;
  /** Where recovery stops, when the scan found the record that stops it: the record and its segment. */
  readonly stop?: { readonly lsn: bigint; readonly segment: string; readonly commitMicros?: bigint };
}

export interface ScanRequest {
  readonly catalog: string;
  readonly server: string;
  readonly backup: DoneBackup;
  readonly choice: Choice;
  readonly target: RecoveryTarget;
  readonly segSize: number;
}

/** How much of a segment is decoded at a time: a whole number of WAL pages, a divisor of any segment size. */
const PIECE_BYTES = 1 << 20;

/** A segment to read: stored bytes from the archive, or (method stream) pg_receivewal's current .partial. */
type SegmentSource = { readonly archived: FetchedWal } | { readonly partial: Buffer };

/** A segment's source, its stored bytes read into `storedInto`; undefined when there is none. */
async function fetchSegment(req: ScanRequest, name: string, storedInto: Buffer): Promise<SegmentSource | undefined> {
  try {
    return { archived: await fetchArchivedWal(req.catalog, req.server, name, { storedInto }) };
  } catch (err) {
    if (!(err instanceof PgbkError && err.code === 'NOT_FOUND')) throw err;
  }
  // wal-fetch serves streaming/NAME.partial when NAME is not archived (src/restore/wal-fetch.ts).
  const { readStreamedPartial, padToSegment } = await import('../catalog/streaming.js');
  const bytes = await readStreamedPartial(req.catalog, req.server, name);
  return bytes === undefined ? undefined : { partial: padToSegment(bytes, req.segSize) };
}

/** The segment's content in pieces through `out` (decodeWalPieces); its length. */
async function decodeSegment(src: SegmentSource, out: Buffer, onPiece: (piece: Buffer, offset: number) => void): Promise<number> {
  if ('archived' in src) return decodeWalPieces(src.archived, out, onPiece);
  onPiece(src.partial, 0);
  return src.partial.length;
}

/**
 * Scan the WAL the restore will replay; read-only. Each segment is decoded in pieces of 1 MiB
 * through one buffer and read as it is decoded, and the stored bytes go into two buffers used in
 * turn (the next segment's are read while this one is decoded): a fresh 16 MiB Buffer per segment
 * cost ~60 ms of page faults on this machine kind, most of the scan (bench/RESULTS, session 24).
 */
export async function scanNewTablespaces(req: ScanRequest): Promise<WalScan> {
  const started = Date.now();
  const { backup, choice, target, segSize, server } = req;
  const reader = new WalRecordReader({ segSize, startLsn: Number(parseLsn(backup.beginLsn)), wants: wantedRecords(target) });
  const rule = replayRule(target, parseLsn(backup.endLsn));
  const nameAt = (s: number): string => segmentNameFrom(timelineForSegment(choice.path, s, segSize), s, segSize);
  const found: FoundTablespace[] = [];
  const out = Buffer.allocUnsafe(Math.min(PIECE_BYTES, segSize));
  const stored = [storedBufferFor(segSize), storedBufferFor(segSize)] as const;
  let segno = segmentNumber(backup.beginWal, segSize);
  let name = nameAt(segno);
  let stopped = false;
  let count = 0;
  let lastCommit: bigint | undefined;
  let stop: WalScan['stop'];
  const onRecord = (rec: WalRecord): void => {
    if (stopped) return;
    const at = commitTimeMicros(rec);
    if (at !== undefined && (lastCommit === undefined || at > lastCommit)) lastCommit = at;
    const verdict = rule(rec);
    if (verdict === 'stop-before') {
      stopped = true;
      stop = { lsn: BigInt(rec.lsn), segment: name, ...(at === undefined ? {} : { commitMicros: at }) };
      return;
    }
    const ts = tablespaceCreation(rec);
    // An empty location is an in-place tablespace (allow_in_place_tablespaces): inside pg_tblspc.
    if (ts !== undefined && ts.location !== '') found.push({ ...ts, segment: name });
    if (verdict === 'replay-then-stop') {
      stopped = true;
      stop = { lsn: BigInt(rec.lsn), segment: name };
    }
  };
  let next = fetchSegment(req, name, stored[segno % 2]!);
  while (!stopped) {
    const src = await next;
    if (src === undefined) break;
    name = nameAt(segno);
    // Read the next segment's stored bytes (into the other buffer) while this one is decoded.
    next = fetchSegment(req, nameAt(segno + 1), stored[(segno + 1) % 2]!);
    next.catch(() => undefined);
    count++;
    let r: FeedResult = { ended: false };
    const thisSegno = segno;
    const length = await decodeSegment(src, out, (piece, offset) => {
      if (!stopped && !r.ended) r = reader.feedPiece(thisSegno, offset, piece, onRecord);
    });
    if (stopped) break;
    if (!r.ended) r = reader.endOfSegment(segno, length);
    if (r.ended) {
      // PostgreSQL ends recovery where the WAL stops making sense; that is fine at the end of the
      // WAL there is, but with more WAL behind it the scan cannot vouch for what recovery replays.
      if ((await next) !== undefined) {
        throw new PgbkError('WAL', `cannot read WAL records past ${formatLsn(BigInt(r.at))} in ${name} (${r.reason}), although ${nameAt(segno + 1)} follows`, {
          server,
          hint: 'pgbk checks the WAL to replay for CREATE TABLESPACE records before restoring; run pgbk verify on the archive, or give --allow-new-tablespaces to restore without that check on another host',
        });
      }
      break;
    }
    segno++;
  }
  // xid: a prepared transaction's commit carries its xid in the body, not decoded; not judged.
  const targetReached = stopped || target.kind === 'latest' || target.kind === 'immediate' || target.kind === 'xid';
  return {
    found,
    segments: count,
    seconds: (Date.now() - started) / 1000,
    targetReached,
    ...(lastCommit === undefined ? {} : { lastCommitMicros: lastCommit }),
    ...(stop === undefined ? {} : { stop }),
  };
}

/**
 * A time target after a hole in the archive (choice.beforeGap): reached only when the scan found
 * the commit that stops recovery before the hole — the scan reads segments in order and ends at
 * the first one missing, so a stop it found lies before the hole. Throws the choice's refusal
 * otherwise; returns the line that says where recovery stops, or undefined when there is no hole.
 */
export function checkStopBeforeGap(choice: Choice, scan: WalScan | { readonly failed: Error }): string | undefined {
  const gap = choice.beforeGap;
  if (gap === undefined) return undefined;
  if ('failed' in scan) {
    const r = gap.refusal;
    throw new PgbkError(r.code, r.message, {
      server: r.server,
      hint: [r.hint, `the WAL before the gap could not be read to tell: ${scan.failed.message}`].filter((x) => x !== undefined).join('; '),
      cause: scan.failed,
    });
  }
  // A stop before the backup's end (a commit timed after the target there: the clocks of the
  // database host and of pgbk's disagree) is one PostgreSQL refuses too: "requested recovery stop
  // point is before consistent recovery point".
  if (!scan.targetReached || scan.stop === undefined || scan.stop.lsn < parseLsn(choice.backup.endLsn)) throw gap.refusal;
  const at = scan.stop.commitMicros === undefined ? '' : ` (committed ${formatMicros(scan.stop.commitMicros)})`;
  return `segment ${gap.missing} is missing from the archive, but recovery stops before it: at the first commit after the target, LSN ${formatLsn(scan.stop.lsn)}${at} in ${scan.stop.segment}`;
}

/**
 * A target the archived WAL does not reach: PostgreSQL replays all of it and then stops with
 * "recovery ended before configured recovery target was reached" instead of starting (session 17's
 * DR walk-through). A warning, not a refusal: WAL archived while the copy replays still counts, and
 * a prepared transaction's xid is not decoded here.
 */
export function unreachedTargetWarning(scan: WalScan, target: RecoveryTarget): string | undefined {
  if (scan.targetReached) return undefined;
  const newest = scan.lastCommitMicros === undefined ? '' : ` (the newest commit in it is at ${formatMicros(scan.lastCommitMicros)})`;
  return `the archived WAL ends before target ${describeTarget(target)}${newest}: unless more WAL is archived before the copy replays that far, PostgreSQL stops with "recovery ended before configured recovery target was reached" instead of starting; restore without a --target-* option to replay all of it${scan.lastCommitMicros === undefined ? '' : ', or with an earlier target'}`;
}

/** The refusal (or, when allowed, the warnings) for tablespaces created in the WAL to replay. */
export function checkNewTablespaces(scan: WalScan, opts: { readonly server: string; readonly backupId: string; readonly allow: boolean }): string[] {
  if (scan.found.length === 0) return [];
  const list = scan.found.map((t) => `tablespace ${t.oid} at ${t.location} (CREATE TABLESPACE at LSN ${formatLsn(t.lsn)}, WAL segment ${t.segment})`);
  if (opts.allow) {
    return scan.found.map(
      (t) =>
        `--allow-new-tablespaces: recovery will create tablespace ${t.oid} at ${t.location} (the path recorded in the WAL at LSN ${formatLsn(t.lsn)}) and the restored cluster will write there; that directory must exist where the copy runs, hold nothing needed (replay empties its version subdirectory) and not be the source's`,
    );
  }
  const first = scan.found[0]!;
  throw new PgbkError(
    'USAGE',
    `the WAL to replay from backup ${opts.backupId} creates ${list.join('; ')}: PostgreSQL's replay links pg_tblspc/<oid> to that absolute path — the source's own directory on its host — and the restored cluster would write into it. Refusing; nothing was written`,
    {
      server: opts.server,
      hint: `restore from a backup taken after the tablespace was created (pgbk backup ${opts.server}), or recover to a target before it (e.g. --target-lsn ${formatLsn(first.prevLsn)}); on another host, where ${first.location} is not the source's, add --allow-new-tablespaces (the directory must exist there and hold nothing needed)`,
    },
  );
}

/** Refuse (before anything is written) a restore whose WAL creates tablespaces; warnings when allowed. */
export async function refuseNewTablespaces(
  req: {
    readonly catalog: string;
    readonly server: string;
    readonly target: RecoveryTarget;
    readonly allowNewTablespaces?: boolean;
    readonly log: (line: string) => void;
  },
  choice: Choice,
): Promise<string[]> {
  const segSize = choice.segSize;
  const allow = req.allowNewTablespaces === true;
  let scan;
  try {
    scan = await scanNewTablespaces({ catalog: req.catalog, server: req.server, backup: choice.backup, choice, target: req.target, segSize });
  } catch (err) {
    if (!allow) throw err;
    checkStopBeforeGap(choice, { failed: err as Error });
    const w = `--allow-new-tablespaces: the WAL to replay could not be checked for CREATE TABLESPACE: ${(err as Error).message}`;
    req.log(`warning: ${w}`);
    return [w];
  }
  req.log(
    `checked ${plural(scan.segments, 'WAL segment')} to replay for CREATE TABLESPACE in ${scan.seconds.toFixed(1)} s: ${scan.found.length === 0 ? 'none' : `${scan.found.length} found`}`,
  );
  const beforeGap = checkStopBeforeGap(choice, scan);
  if (beforeGap !== undefined) req.log(beforeGap);
  const unreached = unreachedTargetWarning(scan, req.target);
  const warnings = [...checkNewTablespaces(scan, { server: req.server, backupId: choice.backup.id, allow }), ...(unreached === undefined ? [] : [unreached])];
  for (const w of warnings) req.log(`warning: ${w}`);
  return warnings;
}
