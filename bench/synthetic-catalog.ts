/**
 * A synthetic catalog for the `pgbk plan` benchmark, written straight to disk in the layout of
 * DESIGN.md §4: server.json, daily DONE backups whose WAL ranges sit inside one long archive on
 * timeline 1, and the archive itself as empty .zst files (plan only lists names, it never opens
 * segments). 200,000 segments of 16 MiB span ~782 log directories, as a real 3 TB archive would.
 */

import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatLsn, segmentStartLsn } from '../src/pg/lsn.js';
import { segmentNameFrom, walDirName } from '../src/pg/wal-name.js';

const SEG_SIZE = 16 * 1024 * 1024;
const DAY_MS = 86_400_000;

export interface SyntheticCatalogSpec {
  readonly catalog: string;
  readonly server: string;
  readonly backups: number;
  readonly segments: number;
  /** First backup's begin time; the others follow daily at the same time of day. */
  readonly firstBackup: Date;
}

export interface SyntheticCatalog {
  /** The newest backup's end time: a sensible `--now` is shortly after. */
  readonly newestEnd: Date;
  /** Segment number each backup begins at, oldest first. */
  readonly beginSegments: readonly number[];
}

function backupId(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** Create the catalog; backups are spread evenly over the archive, each spanning two segments. */
export function writeSyntheticCatalog(spec: SyntheticCatalogSpec): SyntheticCatalog {
  const serverDir = path.join(spec.catalog, spec.server);
  mkdirSync(path.join(serverDir, 'backups'), { recursive: true });
  mkdirSync(path.join(serverDir, 'incoming'), { recursive: true });
  writeFileSync(
    path.join(serverDir, 'server.json'),
    `${JSON.stringify({ systemIdentifier: '7400000000000000001', pgVersion: 150008, walSegmentSize: SEG_SIZE, firstContact: spec.firstBackup.toISOString() }, null, 2)}\n`,
  );

  const walRoot = path.join(serverDir, 'wal');
  let currentDir = '';
  for (let segno = 0; segno < spec.segments; segno++) {
    const name = segmentNameFrom(1, segno, SEG_SIZE);
    const dirName = walDirName(name);
    if (dirName !== currentDir) {
      currentDir = dirName;
      mkdirSync(path.join(walRoot, dirName), { recursive: true });
    }
    closeSync(openSync(path.join(walRoot, dirName, `${name}.zst`), 'w', 0o640));
  }

  const perBackup = Math.floor(spec.segments / spec.backups);
  let newestEnd = spec.firstBackup;
  const beginSegments: number[] = [];
  for (let i = 0; i < spec.backups; i++) {
    const begin = new Date(spec.firstBackup.getTime() + i * DAY_MS);
    const end = new Date(begin.getTime() + 20 * 60_000);
    const beginSeg = i * perBackup + Math.min(10, perBackup - 2);
    const beginLsn = segmentStartLsn(beginSeg, SEG_SIZE) + 0x28n;
    const endLsn = segmentStartLsn(beginSeg + 1, SEG_SIZE) + 0x100n;
    beginSegments.push(beginSeg);
    const id = backupId(begin);
    const record = {
      formatVersion: 1,
      id,
      server: spec.server,
      slot: begin.toISOString(),
      status: 'DONE',
      method: 'basebackup',
      pgVersion: 150008,
      systemIdentifier: '7400000000000000001',
      timeline: 1,
      beginLsn: formatLsn(beginLsn),
      endLsn: formatLsn(endLsn),
      beginWal: segmentNameFrom(1, beginSeg, SEG_SIZE),
      endWal: segmentNameFrom(1, beginSeg + 1, SEG_SIZE),
      beginTime: begin.toISOString(),
      endTime: end.toISOString(),
      sizes: { data: 800_000_000, stored: 120_000_000 },
      compression: 'zstd',
      checksums: { 'base.tar.zst': 'a'.repeat(64), backup_manifest: 'b'.repeat(64) },
      keep: 'none',
    };
    const dir = path.join(serverDir, 'backups', id);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'backup.json'), `${JSON.stringify(record, null, 2)}\n`);
    newestEnd = end;
  }
  return { newestEnd, beginSegments };
}
