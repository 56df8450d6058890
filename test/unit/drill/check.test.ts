/**
 * A drill's check passes only on a real true (issue 14): exactly one row of exactly one boolean
 * column whose value is true. Anything else fails, saying what came back — the same verdict for
 * node-postgres on this host and for psql (with \gdesc's column types) on a drill host.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkVerdict } from '../../../src/drill/check.js';
import { parseDescribedResult } from '../../../src/drill/remote.js';

test('one boolean column, one row, true: passes', () => {
  assert.is(checkVerdict(['boolean'], [[true]]), undefined);
});

test('false, NULL, text "t", several rows, several columns, no row: each fails saying what came back', () => {
  assert.is(checkVerdict(['boolean'], [[false]]), 'returned false (must be true)');
  assert.is(checkVerdict(['boolean'], [[null]]), 'returned NULL (must be true)');
  assert.is(checkVerdict(['text'], [['t']]), 'returned "t" (text) (must be true)');
  assert.is(checkVerdict(['integer'], [[1]]), 'returned 1 (must be true)');
  assert.is(checkVerdict(['boolean'], [[true], [true]]), 'returned 2 rows (must be one row, true)');
  assert.is(checkVerdict(['boolean'], []), 'returned 0 rows (must be one row, true)');
  assert.is(checkVerdict(['boolean', 'integer'], [[true, 2]]), 'returned 2 columns: true, 2 (must be one column, true)');
  assert.is(checkVerdict(['boolean', 'text'], [[true, 'x']]), 'returned 2 columns: true, "x" (text) (must be one column, true)');
});

test("psql's output with \\gdesc: types and values as the verdict needs them", () => {
  const m = 'pgbk-drill-check-0123';
  assert.equal(parseDescribedResult(`?column?\nt\n${m}\nColumn,Type\n?column?,boolean\n`, m), { types: ['boolean'], rows: [[true]] });
  // A wider row whose first column prints t: two columns.
  assert.equal(parseDescribedResult(`?column?,?column?\nt,2\n${m}\nColumn,Type\n?column?,boolean\n?column?,integer\n`, m), {
    types: ['boolean', 'integer'],
    rows: [[true, '2']],
  });
  // text 't' stays text; NULL boolean is an empty field.
  assert.equal(parseDescribedResult(`text\nt\n${m}\nColumn,Type\ntext,text\n`, m), { types: ['text'], rows: [['t']] });
  assert.equal(parseDescribedResult(`bool\n\n${m}\nColumn,Type\nbool,boolean\n`, m), { types: ['boolean'], rows: [[null]] });
  assert.equal(parseDescribedResult(`x\n1\n2\n${m}\nColumn,Type\nx,integer\n`, m), { types: ['integer'], rows: [['1'], ['2']] });
  assert.is(parseDescribedResult('x\n1\n', m), undefined);
  assert.is(
    checkVerdict(...(Object.values(parseDescribedResult(`text\nt\n${m}\nColumn,Type\ntext,text\n`, m)!) as [string[], unknown[][]])),
    'returned "t" (text) (must be true)',
  );
});

test.run();
