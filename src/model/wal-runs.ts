/**
 * Archived WAL as runs of consecutive segments: what the read views (list, status) need of an
 * archive of hundreds of thousands of segments — how many lie between two names, the first, the
 * last — without a string per segment. Pure. A segment name is a 16-hex prefix (timeline, log)
 * and an 8-hex segment number; within one prefix, text order is numeric order.
 */

import type { ArchivedWal } from './types.js';

/** Segments prefix + hex8(seg), …, prefix + hex8(seg + count - 1). */
export interface WalRun {
  readonly prefix: string;
  readonly seg: number;
  readonly count: number;
}

/** The archive as list and status see it. */
export interface WalOverview {
  /** Sorted by name, disjoint. */
  readonly runs: readonly WalRun[];
  /** Number of archived full segments. */
  readonly count: number;
  /** The newest archived segment's mtime (ISO), for the RPO view. */
  readonly newestMtime?: string;
}

export function runName(prefix: string, seg: number): string {
  return prefix + seg.toString(16).toUpperCase().padStart(8, '0');
}

export function firstOf(runs: readonly WalRun[]): string | undefined {
  const r = runs[0];
  return r === undefined ? undefined : runName(r.prefix, r.seg);
}

export function lastOf(runs: readonly WalRun[]): string | undefined {
  const r = runs[runs.length - 1];
  return r === undefined ? undefined : runName(r.prefix, r.seg + r.count - 1);
}

/** Runs of sorted, distinct segment names. */
export function runsOf(sortedNames: readonly string[]): WalRun[] {
  const runs: WalRun[] = [];
  let prefix = '';
  let seg = 0;
  let count = 0;
  for (const name of sortedNames) {
    const p = name.slice(0, 16);
    const s = Number.parseInt(name.slice(16), 16);
    if (count > 0 && p === prefix && s === seg + count) {
      count++;
      continue;
    }
    if (count > 0) runs.push({ prefix, seg, count });
    prefix = p;
    seg = s;
    count = 1;
  }
  if (count > 0) runs.push({ prefix, seg, count });
  return runs;
}

/** Runs from several places (log directories), sorted and merged where they touch or overlap. */
export function mergeRuns(parts: readonly (readonly WalRun[])[]): WalRun[] {
  const all = parts.flat().sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : a.seg - b.seg));
  const out: WalRun[] = [];
  for (const r of all) {
    const prev = out[out.length - 1];
    if (prev !== undefined && prev.prefix === r.prefix && r.seg <= prev.seg + prev.count) {
      const end = Math.max(prev.seg + prev.count, r.seg + r.count);
      out[out.length - 1] = { prefix: prev.prefix, seg: prev.seg, count: end - prev.seg };
    } else out.push(r);
  }
  return out;
}

export function countOf(runs: readonly WalRun[]): number {
  let n = 0;
  for (const r of runs) n += r.count;
  return n;
}

/** How many of a run's names are < `bound` (a 24-hex segment name). */
function below(r: WalRun, bound: string): number {
  const p = bound.slice(0, 16);
  if (p < r.prefix) return 0;
  if (p > r.prefix) return r.count;
  const s = Number.parseInt(bound.slice(16, 24), 16);
  return Math.min(r.count, Math.max(0, s - r.seg));
}

/** How many segments of the (sorted, disjoint) runs are < `bound`: a binary search over the runs. */
function rank(runs: readonly WalRun[], before: readonly number[], bound: string): number {
  const p = bound.slice(0, 16);
  let lo = 0;
  let hi = runs.length;
  // The first run not wholly below the bound.
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const r = runs[mid]!;
    if (r.prefix < p || (r.prefix === p && r.seg + r.count <= Number.parseInt(bound.slice(16, 24), 16))) lo = mid + 1;
    else hi = mid;
  }
  const r = runs[lo];
  return (before[lo] ?? 0) + (r === undefined ? 0 : below(r, bound));
}

/**
 * A counter of segments s with from ≤ s < until (until undefined: no upper bound) in runs sorted by
 * name and disjoint; each count is two binary searches.
 */
export function runCounter(runs: readonly WalRun[]): (from: string, until: string | undefined) => number {
  const before: number[] = [0];
  for (const r of runs) before.push(before[before.length - 1]! + r.count);
  const total = before[before.length - 1]!;
  return (from, until) => Math.max(0, (until === undefined ? total : rank(runs, before, until)) - rank(runs, before, from));
}

/** Either shape of the archive as an overview (a full listing is turned into runs). */
export function overviewOf(wal: ArchivedWal | WalOverview): WalOverview {
  if ('runs' in wal) return wal;
  const runs = runsOf(wal.segments);
  return wal.newestMtime === undefined ? { runs, count: wal.segments.length } : { runs, count: wal.segments.length, newestMtime: wal.newestMtime };
}
