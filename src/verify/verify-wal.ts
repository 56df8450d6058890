/**
 * WAL verification: each archived file is read back in full (decompressed, compared with its
 * SHA256SUMS entry by readArchivedWal) and a segment's page header must name this cluster and
 * this segment — the same validation it passed on the way in.
 */

import { listArchivedWal, readArchivedWal, storedBufferFor } from '../catalog/index.js';
import { toPgbkError } from '../errors.js';
import { segmentNameFrom } from '../pg/wal-name.js';
import { validateSegment } from '../pg/wal-header.js';
import { positionOf } from '../plan/wal-index.js';
import type { BackupRecord, ServerIdentity } from '../model/types.js';
import { planWal } from '../plan/wal.js';

export interface WalVerification {
  readonly checked: number;
  readonly problems: readonly string[];
}

/** The buffers one verification reads every file into (see readArchivedWal's `into`). */
interface SegmentBuffers {
  readonly into: Buffer;
  readonly storedInto: Buffer;
}

const segmentBuffers = (segSize: number): SegmentBuffers => ({ into: Buffer.allocUnsafe(segSize), storedInto: storedBufferFor(segSize) });

/**
 * Read one archived file (stored bytes and content into the same two buffers for every file: a
 * fresh 16 MiB per segment costs ~10× the decoding in page faults on some machines); undefined when
 * it is sound, else the problem. NOT_FOUND → 'missing'.
 */
async function readOne(catalog: string, server: string, name: string, identity: ServerIdentity, bufs: SegmentBuffers): Promise<string | undefined | 'missing'> {
  let buf: Buffer;
  try {
    buf = await readArchivedWal(catalog, server, name, bufs);
  } catch (err) {
    const e = toPgbkError(err);
    return e.code === 'NOT_FOUND' ? 'missing' : `${name}: ${e.message}`;
  }
  if (!/^[0-9A-F]{24}$/.test(name)) return undefined; // .history / .backup: the checksum is the check
  const verdict = validateSegment(name, buf, { systemIdentifier: identity.systemIdentifier, segSize: identity.walSegmentSize });
  return verdict.ok ? undefined : `${name}: ${verdict.reason}`;
}

/**
 * Every segment from beginWal to endWal. A backup that spans a timeline switch may find each
 * segment number on either timeline (the planner's finish-backup rule).
 */
export async function verifyWalRange(catalog: string, server: string, beginWal: string, endWal: string, identity: ServerIdentity): Promise<WalVerification> {
  const segSize = identity.walSegmentSize;
  const begin = positionOf(beginWal, segSize);
  const end = positionOf(endWal, segSize);
  const timelines = begin.timeline === end.timeline ? [begin.timeline] : [begin.timeline, end.timeline];
  const problems: string[] = [];
  let checked = 0;
  const bufs = segmentBuffers(segSize);
  for (let segno = begin.segno; segno <= end.segno; segno++) {
    let outcome: string | undefined | 'missing' = 'missing';
    for (const tli of timelines) {
      outcome = await readOne(catalog, server, segmentNameFrom(tli, segno, segSize), identity, bufs);
      if (outcome !== 'missing') break;
    }
    if (outcome === 'missing') problems.push(`WAL segment ${segmentNameFrom(timelines[0]!, segno, segSize)} is missing from the archive`);
    else {
      checked++;
      if (outcome !== undefined) problems.push(outcome);
    }
  }
  return { checked, problems };
}

/**
 * Every archived file read back (segments, .history, .backup), and the archive's continuity: a segment missing where recovery
 * from a backup must replay (the planner's wal-gap judgement, with `backups` and the PITR window)
 * is a problem too — reading only the files present cannot notice a lost one.
 */
export async function verifyArchive(
  catalog: string,
  server: string,
  identity: ServerIdentity,
  backups: readonly BackupRecord[],
  pitr: { readonly pitrWindowSeconds?: number; readonly now: Date },
): Promise<WalVerification> {
  const wal = await listArchivedWal(catalog, server);
  const names = [...wal.histories, ...wal.segments, ...wal.backupFiles];
  const gaps = planWal({
    segSize: identity.walSegmentSize,
    archived: wal,
    incomingSegments: [],
    backups,
    remaining: backups,
    ...(pitr.pitrWindowSeconds === undefined ? {} : { pitrWindowSeconds: pitr.pitrWindowSeconds, now: pitr.now }),
  }).gapWarnings;
  const problems: string[] = [...gaps];
  const bufs = segmentBuffers(identity.walSegmentSize);
  for (const name of names) {
    const outcome = await readOne(catalog, server, name, identity, bufs);
    if (outcome === 'missing') problems.push(`${name} vanished while verifying (pruned meanwhile?)`);
    else if (outcome !== undefined) problems.push(outcome);
  }
  return { checked: names.length, problems };
}
