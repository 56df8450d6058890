/**
 * Checks that read only the catalog: writable with room for the next backup, WAL arriving within
 * maxLag, the last backup not older than its schedule allows, minRedundancy, WAL continuity (the
 * planner's own wal-gap verdict, so check and plan never disagree), quarantined files, and WAL of
 * another cluster waiting in incoming/.
 */

import { open, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { previousFireTime } from '../config/cron.js';
import type { ServerConfig } from '../config/resolved.js';
import { catalogKeys, incomingDir, quarantinedNames, quarantineReason, serverDir } from '../catalog/index.js';
import { locate } from '../catalog/open.js';
import { localRootOf } from '../catalog/local-spool.js';
import { readWalHeader, LONG_HEADER_SIZE } from '../pg/wal-header.js';
import type { ObservedServer, PlanWarning } from '../model/types.js';
import { formatBytes } from '../lib/byte-size.js';
import { fail, pass, type CheckResult } from './types.js';
import { plural } from '../lib/plural.js';

const GIB = 1024 ** 3;

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Write, fsync and remove a probe file; then compare free space with what the next backup needs. */
export async function checkCatalogSpace(catalog: string, observed: ObservedServer): Promise<CheckResult> {
  // Before the first apply the server's directory does not exist yet: its parent must be writable.
  const dir = (await isDir(serverDir(catalog, observed.name))) ? serverDir(catalog, observed.name) : catalog;
  if (!(await isDir(dir))) {
    return fail('catalog', `${dir} does not exist`, 'create it (owned by the user pgbk runs as), or fix `catalog` in the configuration');
  }
  const probe = path.join(dir, `.pgbk-check-${process.pid}`);
  try {
    await writeFile(probe, 'pgbk check\n');
    const fh = await open(probe, 'r');
    await fh.sync();
    await fh.close();
    await unlink(probe);
  } catch (err) {
    return fail('catalog', `cannot write in ${dir}: ${(err as Error).message}`, 'create the directory and make it writable by the user pgbk runs as');
  }
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const done = observed.backups.filter((b) => b.status === 'DONE');
  const lastStored = done[done.length - 1]?.sizes.stored ?? 0;
  // Room for one more backup the size of the last one plus 1 GiB of WAL: below that the next
  // scheduled backup or a burst of WAL can fill the disk.
  const needed = lastStored + GIB;
  if (free < needed) {
    return fail(
      'catalog',
      `${formatBytes(free)} free in ${dir}, less than the next backup needs (~${formatBytes(needed)})`,
      'free space or grow the file system; tighten retention if old backups are no longer needed',
    );
  }
  return pass('catalog', `writable, ${formatBytes(free)} free`);
}

/** RPO: the newest WAL that reached the catalog (archived or waiting in incoming/) vs maxLag. */
export function checkWalLag(server: ServerConfig, observed: ObservedServer, now: Date): CheckResult | undefined {
  const maxLag = server.wal.maxLagSeconds;
  if (maxLag === undefined) return undefined;
  const times: number[] = [];
  if (observed.wal.newestMtime !== undefined) times.push(Date.parse(observed.wal.newestMtime));
  for (const f of observed.incoming) if (f.kind === 'segment' && f.mtime !== undefined) times.push(Date.parse(f.mtime));
  if (times.length === 0) {
    return fail('wal lag', 'no WAL has reached the catalog yet', 'check archive_command; `SELECT pg_switch_wal()` forces the current segment out');
  }
  const lag = now.getTime() - Math.max(...times);
  if (lag > maxLag * 1000) {
    return fail(
      'wal lag',
      `newest WAL arrived ${age(lag)} ago, more than maxLag ${age(maxLag * 1000)}`,
      'check that archiving works; on a quiet server set archive_timeout below maxLag so a segment is closed in time',
    );
  }
  return pass('wal lag', `newest WAL arrived ${age(lag)} ago (maxLag ${age(maxLag * 1000)})`);
}

/** A backup for the latest schedule slot exists, or the slot fired less than `graceMs` ago. */
export function checkBackupAge(server: ServerConfig, observed: ObservedServer, now: Date, graceMs = 3600_000): CheckResult {
  const done = observed.backups.filter((b) => b.status === 'DONE');
  const last = done[done.length - 1];
  if (last === undefined) {
    return fail('backup age', 'no completed backup', `run pgbk backup ${server.name} (or pgbk apply) to take the first one`);
  }
  const lastText = `last backup ${last.id}, ${age(now.getTime() - Date.parse(last.endTime))} ago`;
  const schedule = server.backup.schedule;
  if (schedule === undefined) return pass('backup age', `${lastText} (no schedule: one-off backups only)`);
  const fired = previousFireTime(schedule, server.backup.timezone, now);
  if (fired === undefined) return pass('backup age', lastText);
  const covered = observed.backups.some((b) => b.status !== 'FAILED' && Date.parse(b.slot) >= fired.getTime());
  if (!covered && now.getTime() - fired.getTime() > graceMs) {
    return fail(
      'backup age',
      `schedule "${schedule}" fired ${fired.toISOString()} and no backup was taken for it; ${lastText}`,
      'is the daemon (or the cron job running pgbk apply) running? see its log, or run pgbk apply now',
    );
  }
  return pass('backup age', lastText);
}

export function checkMinRedundancy(server: ServerConfig, observed: ObservedServer): CheckResult {
  const want = server.retention.minRedundancy;
  const have = observed.backups.filter((b) => b.status === 'DONE').length;
  if (have < want) {
    return fail(
      'redundancy',
      `${plural(have, 'completed backup')}, minRedundancy is ${want}`,
      `take more backups (pgbk backup ${server.name}) until ${want} exist`,
    );
  }
  return pass('redundancy', `${plural(have, 'completed backup')}, minRedundancy ${want}`);
}

/** The planner's wal-gap warnings for this server: the same judgement `pgbk plan` prints. */
export function checkContinuity(observed: ObservedServer, warnings: readonly PlanWarning[]): CheckResult | undefined {
  if (!observed.backups.some((b) => b.status === 'DONE')) return undefined;
  const gaps = warnings.filter((w) => w.server === observed.name && w.code === 'wal-gap');
  if (gaps.length > 0) {
    return fail(
      'wal continuity',
      gaps.map((g) => g.message).join('; '),
      'recovery cannot cross a gap: find the missing segments (PostgreSQL pg_wal, errors/) and put them in incoming/, then take a new backup',
    );
  }
  const segs = observed.wal.segments;
  return pass('wal continuity', segs.length === 0 ? 'no WAL archived' : `no gap from the oldest backup to ${segs[segs.length - 1]}`);
}

async function firstReasonLine(catalog: string, server: string, name: string): Promise<string> {
  try {
    const text = await quarantineReason(catalog, server, name);
    if (text === undefined) return 'no .reason file';
    return /^reason: (.*)$/m.exec(text)?.[1] ?? text.split('\n')[0] ?? '';
  } catch {
    return 'no .reason file';
  }
}

export async function checkQuarantine(catalog: string, server: string): Promise<CheckResult> {
  const dir = locate(catalog, catalogKeys.errors(server));
  const names = await quarantinedNames(catalog, server);
  if (names.length === 0) return pass('errors/', 'no quarantined files');
  const shown = await Promise.all(names.slice(0, 3).map(async (n) => `${n} (${await firstReasonLine(catalog, server, n)})`));
  const more = names.length > 3 ? ` and ${names.length - 3} more` : '';
  return fail(
    'errors/',
    `${plural(names.length, 'quarantined file')} in ${dir}: ${shown.join('; ')}${more}`,
    "read each .reason; WAL of another cluster means some server's archive_command points at this catalog — fix it, then move or delete the files (pgbk never does)",
  );
}

/** WAL files waiting in incoming/ whose page header names another cluster (they will be quarantined). */
export async function checkIncomingIdentity(catalog: string, observed: ObservedServer, expected: string | undefined): Promise<CheckResult | undefined> {
  // An object store without s3.spool has no incoming/ (WAL arrives by wal-push only): nothing to vouch for.
  if (expected === undefined || localRootOf(catalog) === undefined) return undefined;
  const foreign: string[] = [];
  for (const f of observed.incoming) {
    if (f.kind !== 'segment' && f.kind !== 'partial') continue;
    const buf = Buffer.alloc(LONG_HEADER_SIZE);
    try {
      const fh = await open(path.join(incomingDir(catalog, observed.name), f.name), 'r');
      try {
        await fh.read(buf, 0, LONG_HEADER_SIZE, 0);
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // archived meanwhile
      throw err;
    }
    const h = readWalHeader(buf);
    if (h !== undefined && h.systemIdentifier !== expected) foreign.push(`${f.name} (cluster ${h.systemIdentifier})`);
  }
  if (foreign.length === 0) return pass('incoming WAL identity', `WAL in incoming/ belongs to cluster ${expected}`);
  return fail(
    'incoming WAL identity',
    `incoming/ holds WAL of another cluster: ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ` and ${foreign.length - 3} more` : ''}`,
    "another server's archive_command writes into this server's incoming/: fix that server's archive_command (pgbk will quarantine these files)",
  );
}
