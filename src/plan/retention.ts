/**
 * Retention, Barman-compatible (DESIGN.md §5). Decides which DONE backups are obsolete and which
 * FAILED ones can be cleaned up. Choices where Barman leaves room, made on the side of keeping data:
 *
 * - redundancy N and recoveryWindow D combined: a backup is kept if EITHER rule keeps it (union).
 *   Deleting only what both rules call obsolete never removes a backup a DBA asked for by one rule.
 * - Backups pinned with keep 'full' or 'standalone' are outside the rolling set: never obsolete, and
 *   they do not count toward N, toward the one-before-the-window base, or toward minRedundancy M.
 *   A pin is the DBA's extra guarantee; letting it displace a rolling backup would silently shrink
 *   the retention the policy promises (a standalone pin cannot even serve point-in-time recovery).
 * - minRedundancy M: obsolete backups are deleted oldest first, stopping before fewer than M
 *   unpinned DONE backups would remain; the rest are held back with a warning.
 * - A backup in use by a restore (`inUse`) is never deleted; it still counts as remaining.
 * - STARTED and WAITING_FOR_WAL backups are never touched and do not count as DONE; nor does a
 *   DONE backup a restore refuses because a segment of its own WAL is missing from the archive
 *   (plan/recoverable.ts backupsMissingOwnWal). Counting it let redundancy 1 delete the last
 *   backup that could still be restored (session 17's disaster-recovery walk-through). It is kept
 *   while it is newer than a backup the policy keeps (the segment may come back), and deleted once
 *   every backup the policy keeps is newer than it.
 * - FAILED backups are cleaned up once a newer DONE backup exists (until then they are the only
 *   evidence of why backups fail, and cost a retry nothing).
 */

import type { RetentionPolicy } from '../config/resolved.js';
import { formatDuration } from '../config/duration.js';
import { type BackupRecord, type DoneBackup, endTimeMs } from '../model/types.js';
import { plural } from '../lib/plural.js';

export interface RetentionEntry {
  readonly backup: BackupRecord;
  readonly reason: string;
}

export interface RetentionDecision {
  /** DONE backups to delete, oldest first. */
  readonly obsolete: readonly RetentionEntry[];
  /** FAILED backups to remove, oldest first. */
  readonly failed: readonly RetentionEntry[];
  /** Obsolete backups kept anyway, with the reason (in use, or minRedundancy). */
  readonly held: readonly RetentionEntry[];
  /** Every backup that survives this plan (any status), sorted by id. */
  readonly remaining: readonly BackupRecord[];
  /** Human messages for the min-redundancy warning (at most one). */
  readonly minRedundancyWarnings: readonly string[];
  /** Human messages for backups held because a restore uses them. */
  readonly inUseWarnings: readonly string[];
}

/** Which unpinned DONE backups the policy keeps, and the words for why the others are obsolete. */
function keptByPolicy(newestFirst: readonly DoneBackup[], policy: RetentionPolicy, now: Date): { kept: ReadonlySet<string>; why: string } {
  const kept = new Set<string>();
  const reasons: string[] = [];
  const n = policy.redundancy;
  const d = policy.recoveryWindowSeconds;
  if (n === undefined && d === undefined) {
    // No retention rule configured: nothing expires.
    for (const b of newestFirst) kept.add(b.id);
    return { kept, why: '' };
  }
  if (n !== undefined) {
    newestFirst.slice(0, n).forEach((b) => kept.add(b.id));
    reasons.push(`beyond redundancy ${n}`);
  }
  if (d !== undefined) {
    const boundary = now.getTime() - d * 1000;
    let baseTaken = false;
    for (const b of newestFirst) {
      if (endTimeMs(b) >= boundary) {
        kept.add(b.id);
      } else if (!baseTaken) {
        // The newest backup that ended before the window is the base for recovering to the
        // window's first instant (Barman keeps it too).
        kept.add(b.id);
        baseTaken = true;
      }
    }
    reasons.push(`outside recoveryWindow ${formatDuration(d)}`);
  }
  return { kept, why: reasons.join(' and ') };
}

/** `unrestorable`: DONE backups missing a segment of their own WAL, each with the first it misses. */
export function planRetention(
  policy: RetentionPolicy,
  backups: readonly BackupRecord[],
  now: Date,
  unrestorable: ReadonlyMap<string, string> = new Map(),
): RetentionDecision {
  const byId = [...backups].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const rolling = byId.filter((b): b is DoneBackup => b.status === 'DONE' && b.keep === 'none' && !unrestorable.has(b.id));
  const newestFirst = [...rolling].reverse();
  const { kept, why } = keptByPolicy(newestFirst, policy, now);

  const deleted = new Set<string>();
  const obsolete: RetentionEntry[] = [];
  const held: RetentionEntry[] = [];
  const minRedundancyWarnings: string[] = [];
  const inUseWarnings: string[] = [];
  const heldByMin: string[] = [];
  let remainingCount = rolling.length;

  // Oldest first: the oldest backups go first, so minRedundancy holds back the newer ones.
  for (const b of rolling) {
    if (kept.has(b.id)) continue;
    const inUse = b.inUse ?? [];
    if (inUse.length > 0) {
      const users = inUse.map((u) => `pid ${u.pid} on ${u.host} since ${u.since}`).join(', ');
      const reason = `${why}, but in use by a restore (${users}); not deleted`;
      held.push({ backup: b, reason });
      inUseWarnings.push(`backup ${b.id} is ${reason}`);
      continue;
    }
    if (remainingCount - 1 < policy.minRedundancy) {
      held.push({ backup: b, reason: `${why}, but minRedundancy ${policy.minRedundancy} holds it` });
      heldByMin.push(b.id);
      continue;
    }
    deleted.add(b.id);
    remainingCount--;
    obsolete.push({ backup: b, reason: '' });
  }
  if (heldByMin.length > 0) {
    minRedundancyWarnings.push(
      `retention held back: ${plural(heldByMin.length, 'obsolete backup')} (${heldByMin.join(', ')}) kept because ` +
        `minRedundancy is ${policy.minRedundancy} (${plural(remainingCount, 'DONE backup')} remain${remainingCount === 1 ? 's' : ''})`,
    );
  }

  // "N newer backups remain": DONE backups (pinned included) newer than it that survive this plan
  // and can be restored.
  const survivingDone = byId.filter((b) => b.status === 'DONE' && !deleted.has(b.id) && !unrestorable.has(b.id));
  const withReasons: RetentionEntry[] = obsolete.map((e) => {
    const newer = survivingDone.filter((s) => s.id > e.backup.id).length;
    return { backup: e.backup, reason: `${why}; ${plural(newer, 'newer backup')} remain${newer === 1 ? 's' : ''}` };
  });
  // An unrestorable backup older than every restorable one the policy keeps holds nothing anyone
  // can restore, now or once its segment came back (the kept ones are newer).
  const oldestKept = rolling.find((b) => !deleted.has(b.id));
  if (why !== '' && oldestKept !== undefined) {
    for (const b of byId) {
      const missing = unrestorable.get(b.id);
      if (missing === undefined || b.status !== 'DONE' || b.keep !== 'none' || b.id > oldestKept.id) continue;
      if ((b.inUse ?? []).length > 0) continue;
      deleted.add(b.id);
      withReasons.push({
        backup: b,
        reason: `cannot be restored (segment ${missing} of its own WAL is missing from the archive) and older than every backup retention keeps (oldest ${oldestKept.id})`,
      });
    }
    withReasons.sort((a, b) => (a.backup.id < b.backup.id ? -1 : 1));
  }

  const failed: RetentionEntry[] = [];
  for (const b of byId) {
    if (b.status !== 'FAILED' || b.keep !== 'none') continue; // only DONE backups are ever in use
    const newerDone = survivingDone.find((s) => s.id > b.id);
    if (newerDone === undefined) continue;
    failed.push({ backup: b, reason: `failed (${b.error}); newer backup ${newerDone.id} is DONE` });
    deleted.add(b.id);
  }

  return {
    obsolete: withReasons,
    failed,
    held,
    remaining: byId.filter((b) => !deleted.has(b.id)),
    minRedundancyWarnings,
    inUseWarnings,
  };
}
