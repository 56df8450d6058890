/**
 * WAL segment names turned into numbers once, so continuity and pruning over hundreds of thousands
 * of archived segments are binary searches and linear passes rather than string work per segment.
 * A position is (timeline, XLogSegNo); per timeline we keep a sorted array of segment numbers.
 */

import { isValidSegmentSize, parseSegmentName, segmentNumber } from '../pg/wal-name.js';

export interface SegmentPosition {
  readonly timeline: number;
  readonly segno: number;
}

/** Timeline → ascending, duplicate-free segment numbers. */
export type SegmentIndex = ReadonlyMap<number, readonly number[]>;

/** Value of an upper-case hex digit, or -1 (PostgreSQL writes names with %08X). */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}

/** 8 hex digits at `at` as a number, or -1 if any is not upper-case hex. */
function hex8At(name: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const d = hexDigit(name.charCodeAt(i));
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * Position of a segment name (or of a .backup file's segment: its first 24 characters).
 * Hot path: the archive can list hundreds of thousands of names, so the common case reads the
 * digits directly; anything unusual is handed to pg/wal-name.ts, which owns the rules and the
 * error message (a unit test checks both paths agree).
 */
export function positionOf(name: string, segSize: number): SegmentPosition {
  if (name.length >= 24 && isValidSegmentSize(segSize)) {
    const perLog = 0x100000000 / segSize;
    const timeline = hex8At(name, 0);
    const log = hex8At(name, 8);
    const seg = hex8At(name, 16);
    if (timeline > 0 && log >= 0 && seg >= 0 && seg < perLog && (name.length === 24 || name.charCodeAt(24) === 46)) {
      return { timeline, segno: log * perLog + seg };
    }
  }
  const segno = segmentNumber(name, segSize); // throws PgbkError('WAL') for a malformed name
  const parsed = parseSegmentName(name.slice(0, 24));
  return { timeline: parsed?.timeline ?? 0, segno };
}

/** Positions of many names, as two parallel arrays (no object per name). */
export interface PositionList {
  readonly timelines: Float64Array;
  readonly segnos: Float64Array;
}

export function positionsOf(names: readonly string[], segSize: number): PositionList {
  const timelines = new Float64Array(names.length);
  const segnos = new Float64Array(names.length);
  names.forEach((name, i) => {
    const p = positionOf(name, segSize);
    timelines[i] = p.timeline;
    segnos[i] = p.segno;
  });
  return { timelines, segnos };
}

function sortUnique(values: number[]): number[] {
  let sorted = true;
  for (let i = 1; i < values.length; i++) {
    if ((values[i] as number) <= (values[i - 1] as number)) {
      sorted = false;
      break;
    }
  }
  if (sorted) return values; // the observed archive is already sorted: the common, linear case
  values.sort((a, b) => a - b);
  const out: number[] = [];
  for (const v of values) if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
  return out;
}

export function indexPositions(positions: PositionList): SegmentIndex {
  const byTimeline = new Map<number, number[]>();
  const { timelines, segnos } = positions;
  for (let i = 0; i < timelines.length; i++) {
    const timeline = timelines[i] as number;
    let list = byTimeline.get(timeline);
    if (list === undefined) {
      list = [];
      byTimeline.set(timeline, list);
    }
    list.push(segnos[i] as number);
  }
  for (const [timeline, list] of byTimeline) byTimeline.set(timeline, sortUnique(list));
  return byTimeline;
}

export function indexSegments(names: readonly string[], segSize: number): SegmentIndex {
  return indexPositions(positionsOf(names, segSize));
}

/** Union of two indexes (archived ∪ what this plan archives). */
export function mergeIndexes(a: SegmentIndex, b: SegmentIndex): SegmentIndex {
  const out = new Map<number, readonly number[]>();
  for (const timeline of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(timeline) ?? [];
    const y = b.get(timeline) ?? [];
    if (y.length === 0) out.set(timeline, x);
    else if (x.length === 0) out.set(timeline, y);
    else out.set(timeline, sortUnique([...x, ...y]));
  }
  return out;
}

/** Index of the first element ≥ value. */
export function lowerBound(list: readonly number[], value: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function contains(list: readonly number[] | undefined, value: number): boolean {
  if (list === undefined) return false;
  const i = lowerBound(list, value);
  return i < list.length && list[i] === value;
}

/** How many of from..to (inclusive) are present. */
export function countInRange(list: readonly number[], from: number, to: number): number {
  if (to < from) return 0;
  return lowerBound(list, to + 1) - lowerBound(list, from);
}

/**
 * The first number in from..to (inclusive) that is absent, or undefined if all are present.
 * Binary search on "list[start + k] === from + k", which holds for a prefix of k because the list
 * is sorted and duplicate-free.
 */
export function firstMissing(list: readonly number[], from: number, to: number): number | undefined {
  if (to < from) return undefined;
  const start = lowerBound(list, from);
  let lo = 0; // list[start + k] === from + k for all k < lo
  let hi = Math.min(to - from + 1, list.length - start);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[start + mid] === from + mid) lo = mid + 1;
    else hi = mid;
  }
  const candidate = from + lo;
  return candidate <= to ? candidate : undefined;
}
