/**
 * Sanity checks for the small text files PostgreSQL archives beside segments: timeline .history
 * files and backup history (.backup) files. They carry no system identifier, so the checks make
 * sure the file is what its name says, not a binary or an empty file.
 */

import { isLsn, parseLsn } from '../pg/lsn.js';
import type { SegmentVerdict } from '../pg/wal-header.js';

const MAX_TEXT_FILE = 1024 * 1024;

function asText(buf: Buffer): string | undefined {
  if (buf.length === 0 || buf.length > MAX_TEXT_FILE || buf.includes(0)) return undefined;
  const text = buf.toString('utf8');
  return text.includes('\uFFFD') ? undefined : text;
}

/**
 * "<parent tli>\t<switch LSN>\t<reason>" lines (timeline.c writeTimeLineHistory), each parent
 * below the file's own timeline; blank and "#" lines are allowed as PostgreSQL's reader does.
 */
export function validateHistoryFile(name: string, buf: Buffer): SegmentVerdict {
  const text = asText(buf);
  if (text === undefined) return { ok: false, reason: 'history file is empty, binary or too large' };
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  if (timeline < 2) return { ok: false, reason: 'timeline 1 has no history file' };
  let entries = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [tli, lsn] = line.split(/\s+/);
    if (tli === undefined || !/^\d+$/.test(tli) || lsn === undefined || !isLsn(lsn)) {
      return { ok: false, reason: `history file line is not "<timeline> <LSN> <reason>": "${line.slice(0, 80)}"` };
    }
    if (Number(tli) >= timeline) {
      return { ok: false, reason: `history file of timeline ${timeline} lists timeline ${tli} as a parent` };
    }
    entries++;
  }
  if (entries === 0) return { ok: false, reason: 'history file lists no parent timeline' };
  return { ok: true };
}

/**
 * Backup history file (xlog.c do_pg_backup_stop): must state START and STOP WAL LOCATION, and the
 * start must be the segment and offset its name encodes ("<segment>.<offset>.backup").
 */
export function validateBackupHistoryFile(name: string, buf: Buffer, segSize: number): SegmentVerdict {
  const text = asText(buf);
  if (text === undefined) return { ok: false, reason: 'backup history file is empty, binary or too large' };
  const start = /^START WAL LOCATION: ([0-9A-Fa-f]+\/[0-9A-Fa-f]+) \(file ([0-9A-F]{24})\)$/m.exec(text);
  if (start === null || start[1] === undefined || start[2] === undefined) {
    return { ok: false, reason: 'backup history file has no "START WAL LOCATION" line' };
  }
  if (!/^STOP WAL LOCATION: /m.test(text)) {
    return { ok: false, reason: 'backup history file has no "STOP WAL LOCATION" line' };
  }
  if (start[2] !== name.slice(0, 24)) {
    return { ok: false, reason: `backup history file starts in ${start[2]}, its name says ${name.slice(0, 24)}` };
  }
  const offset = Number(parseLsn(start[1]) % BigInt(segSize));
  if (offset !== Number.parseInt(name.slice(25, 33), 16)) {
    return { ok: false, reason: `backup start ${start[1]} does not match the offset in the file name` };
  }
  return { ok: true };
}
