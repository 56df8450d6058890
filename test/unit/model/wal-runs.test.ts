/** Runs of segments answer the same counts as the full list of names. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { firstOf, lastOf, mergeRuns, overviewOf, runCounter, runsOf } from '../../../src/model/wal-runs.js';
import { segmentNameFrom } from '../../../src/pg/wal-name.js';

const SEG = 16 * 1024 * 1024;
const name = (tli: number, segno: number): string => segmentNameFrom(tli, segno, SEG);

/** The reference: count by comparing names as text, as walPerBackup does on a full list. */
function countNames(sorted: readonly string[], from: string, until: string | undefined): number {
  return sorted.filter((s) => s >= from && (until === undefined || s < until)).length;
}

test('runsOf and the counter agree with the names, across log directories, timelines and gaps', () => {
  // A deterministic pseudo-random archive: two timelines, gaps, a log-directory boundary (0xFF → 0x100).
  let x = 7;
  const rand = (): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const names: string[] = [];
  for (let s = 200; s < 900; s++) if (rand() > 0.1) names.push(name(1, s));
  for (let s = 850; s < 1100; s++) if (rand() > 0.3) names.push(name(2, s));
  names.sort();
  const runs = runsOf(names);
  assert.ok(runs.length > 10, 'gaps make several runs');
  assert.is(firstOf(runs), names[0]);
  assert.is(lastOf(runs), names[names.length - 1]);
  const count = runCounter(runs);
  const bounds = [name(1, 0), name(1, 255), name(1, 256), name(1, 300), name(1, 899), name(1, 5000), name(2, 0), name(2, 900), name(2, 1099), name(3, 1)];
  for (const from of bounds) {
    assert.is(count(from, undefined), countNames(names, from, undefined), `from ${from}`);
    for (const until of bounds) assert.is(count(from, until), countNames(names, from, until), `${from}…${until}`);
  }
  for (const n of names.slice(0, 50)) assert.is(count(n, undefined), countNames(names, n, undefined));
});

test('mergeRuns joins runs from several directories and drops a name listed twice', () => {
  const a = runsOf([name(1, 1), name(1, 2), name(1, 3)]);
  const b = runsOf([name(1, 3), name(1, 4), name(1, 9)]);
  assert.equal(mergeRuns([b, a]), runsOf([name(1, 1), name(1, 2), name(1, 3), name(1, 4), name(1, 9)]));
});

test('overviewOf a full listing keeps count and newest mtime', () => {
  const o = overviewOf({ segments: [name(1, 4), name(1, 5), name(1, 7)], histories: [], backupFiles: [], newestMtime: '2026-01-01T00:00:00.000Z' });
  assert.is(o.count, 3);
  assert.is(o.runs.length, 2);
  assert.is(o.newestMtime, '2026-01-01T00:00:00.000Z');
});

test.run();
