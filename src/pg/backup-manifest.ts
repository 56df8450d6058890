/**
 * The backup_manifest pg_basebackup writes (PG 13+): JSON listing every file with its size and the
 * WAL range the backup needs. pgbk takes the backup's LSN range from it rather than from
 * pg_basebackup's chatter on stderr, after checking the manifest's own SHA-256 like pg_verifybackup.
 */

import { createHash } from 'node:crypto';
import { PgbkError } from '../errors.js';
import { parseLsn } from './lsn.js';

export interface WalRange {
  readonly timeline: number;
  readonly startLsn: string;
  readonly endLsn: string;
}

export interface ManifestSummary {
  readonly walRanges: readonly WalRange[];
  /** The range the backup starts in (lowest Start-LSN): its timeline is the backup's timeline. */
  readonly begin: WalRange;
  /** The range holding the end of the backup (highest End-LSN). */
  readonly end: WalRange;
  readonly fileCount: number;
  /** Sum of the files' uncompressed sizes: the data size a restore writes. */
  readonly dataBytes: number;
}

const CHECKSUM_KEY = '"Manifest-Checksum"';

/** The manifest's checksum covers every byte before the line holding "Manifest-Checksum". */
export function verifyManifestChecksum(text: string, file: string): void {
  const at = text.lastIndexOf(CHECKSUM_KEY);
  if (at < 0) throw new PgbkError('PG', 'backup_manifest has no Manifest-Checksum', { path: file });
  const expected = /"Manifest-Checksum"\s*:\s*"([0-9a-f]{64})"/.exec(text.slice(at))?.[1];
  if (expected === undefined) throw new PgbkError('PG', 'backup_manifest has a malformed Manifest-Checksum', { path: file });
  const actual = createHash('sha256').update(text.slice(0, at), 'utf8').digest('hex');
  if (actual !== expected) {
    throw new PgbkError('PG', `backup_manifest checksum mismatch (computed ${actual}, manifest says ${expected})`, { path: file });
  }
}

function asRecord(value: unknown, what: string, file: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PgbkError('PG', `backup_manifest: ${what} is not an object`, { path: file });
  }
  return value as Record<string, unknown>;
}

function asArray(value: unknown, what: string, file: string): unknown[] {
  if (!Array.isArray(value)) throw new PgbkError('PG', `backup_manifest: ${what} is not a list`, { path: file });
  return value;
}

function parseRange(value: unknown, file: string): WalRange {
  const r = asRecord(value, 'a WAL-Ranges entry', file);
  const timeline = r['Timeline'];
  const startLsn = r['Start-LSN'];
  const endLsn = r['End-LSN'];
  if (typeof timeline !== 'number' || !Number.isInteger(timeline) || timeline < 1 || typeof startLsn !== 'string' || typeof endLsn !== 'string') {
    throw new PgbkError('PG', `backup_manifest: malformed WAL-Ranges entry ${JSON.stringify(value)}`, { path: file });
  }
  if (parseLsn(endLsn) < parseLsn(startLsn)) {
    throw new PgbkError('PG', `backup_manifest: WAL range on timeline ${timeline} ends (${endLsn}) before it starts (${startLsn})`, { path: file });
  }
  return { timeline, startLsn, endLsn };
}

/** Parse and check a backup_manifest's text (file is only for messages). */
export function parseBackupManifest(text: string, file: string): ManifestSummary {
  verifyManifestChecksum(text, file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PgbkError('PG', `backup_manifest is not valid JSON: ${(err as Error).message}`, { path: file });
  }
  const root = asRecord(json, 'the manifest', file);
  if (root['PostgreSQL-Backup-Manifest-Version'] !== 1) {
    throw new PgbkError('PG', `backup_manifest: unsupported version ${JSON.stringify(root['PostgreSQL-Backup-Manifest-Version'])}`, { path: file });
  }
  const walRanges = asArray(root['WAL-Ranges'], 'WAL-Ranges', file).map((r) => parseRange(r, file));
  const first = walRanges[0];
  if (first === undefined) throw new PgbkError('PG', 'backup_manifest: WAL-Ranges is empty', { path: file });
  let begin = first;
  let end = first;
  for (const r of walRanges) {
    if (parseLsn(r.startLsn) < parseLsn(begin.startLsn)) begin = r;
    if (parseLsn(r.endLsn) > parseLsn(end.endLsn)) end = r;
  }
  let dataBytes = 0;
  const files = asArray(root['Files'], 'Files', file);
  for (const f of files) {
    const size = asRecord(f, 'a Files entry', file)['Size'];
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new PgbkError('PG', `backup_manifest: malformed Files entry ${JSON.stringify(f)}`, { path: file });
    }
    dataBytes += size;
  }
  return { walRanges, begin, end, fileCount: files.length, dataBytes };
}
