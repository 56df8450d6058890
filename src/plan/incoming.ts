/**
 * What to do with the files archive_command dropped into incoming/: archive the WAL ones (one
 * action per server; the executor verifies each file's header and content again), quarantine what
 * cannot be WAL of this cluster (never silently deleted, DESIGN.md §4), and leave alone files a
 * writer is still producing ('in-flight'). A .partial segment in incoming/ is the last, incomplete
 * segment of an old timeline that a promoted standby archived: it is archived too (restores that
 * follow the old timeline to its end need it), but not counted as a segment.
 */

import { isBackupHistoryName, isHistoryName, isSegmentName } from '../pg/wal-name.js';
import { IN_FLIGHT_GRACE_MS, type ArchiveWalAction, type IncomingFile, type QuarantineAction, type ServerIdentity } from '../model/types.js';

export interface IncomingDecision {
  readonly archive: ArchiveWalAction | undefined;
  readonly quarantine: readonly QuarantineAction[];
  /** Segment names the archive action will add: later steps count them as archived. */
  readonly segments: readonly string[];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Why a file must be quarantined, or undefined if it is archivable / to be left alone. */
function quarantineReason(f: IncomingFile, identity: ServerIdentity | undefined): string | undefined {
  switch (f.kind) {
    case 'in-flight':
    case 'partial':
      return undefined;

    case 'unknown':
      return 'not a WAL file name';
    case 'segment':
      if (!isSegmentName(f.name)) return 'not a WAL file name';
      // Before first contact the segment size is unknown; the executor records it then.
      if (identity !== undefined && f.size !== identity.walSegmentSize) {
        return `size ${f.size} bytes, expected ${identity.walSegmentSize}`;
      }
      return undefined;
    case 'history':
      return isHistoryName(f.name) ? undefined : 'not a WAL file name';
    case 'backup':
      return isBackupHistoryName(f.name) ? undefined : 'not a WAL file name';
    default: {
      const unreachable: never = f.kind;
      throw new Error(`unhandled incoming kind ${String(unreachable)}`);
    }
  }
}

function describe(segments: readonly string[], histories: number, backups: number, partials: number): string {
  const parts: string[] = [];
  const first = segments[0];
  const last = segments[segments.length - 1];
  if (first !== undefined && last !== undefined) {
    const range = first === last ? first : `${first}…${last}`;
    parts.push(`${plural(segments.length, 'segment')} ${range}`);
  }
  if (histories > 0) parts.push(plural(histories, 'history file'));
  if (backups > 0) parts.push(plural(backups, 'backup history file'));
  if (partials > 0) parts.push(plural(partials, 'partial segment'));
  return `${parts.join(', ')} from incoming/`;
}

/** A short segment modified moments ago: a plain `cp` is still writing it. Leave it for the next run. */
function isStillBeingWritten(f: IncomingFile, identity: ServerIdentity | undefined, now: Date): boolean {
  if (f.kind !== 'segment' || identity === undefined || f.size >= identity.walSegmentSize || f.mtime === undefined) return false;
  return now.getTime() - Date.parse(f.mtime) < IN_FLIGHT_GRACE_MS;
}

export function planIncoming(server: string, identity: ServerIdentity | undefined, incoming: readonly IncomingFile[], now: Date): IncomingDecision {
  const quarantine: QuarantineAction[] = [];
  const files: string[] = [];
  const segments: string[] = [];
  let histories = 0;
  let backups = 0;
  let partials = 0;
  for (const f of incoming) {
    if (f.kind === 'in-flight') continue;
    if (isStillBeingWritten(f, identity, now)) continue;
    const why = quarantineReason(f, identity);
    if (why !== undefined) {
      quarantine.push({ kind: 'quarantine', server, subject: f.name, reason: why, file: f.name });
      continue;
    }
    files.push(f.name);
    if (f.kind === 'segment') segments.push(f.name);
    else if (f.kind === 'history') histories++;
    else if (f.kind === 'partial') partials++;
    else backups++;
  }
  files.sort();
  segments.sort();
  const archive: ArchiveWalAction | undefined =
    files.length === 0
      ? undefined
      : {
          kind: 'archive-wal',
          server,
          subject: describe(segments, histories, backups, partials),
          reason: 'pushed by archive_command; not yet in the archive',
          files,
        };
  return { archive, quarantine, segments };
}
