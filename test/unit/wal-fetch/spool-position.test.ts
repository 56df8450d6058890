import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { advancePastConsumed } from '../../../src/wal-fetch/spool-position.js';

const SEG = 16 * 1024 * 1024;

test('advancePastConsumed: names gone from the spool were consumed; the position moves past the newest', () => {
  const pos = { segSize: SEG, segno: 3, seen: new Set(['000000010000000000000004', '000000010000000000000005', '000000010000000000000006']) };
  assert.is(advancePastConsumed(pos, new Set(['000000010000000000000006'])), true);
  assert.is(pos.segno, 5);
  assert.equal([...pos.seen], ['000000010000000000000006']);
  assert.is(advancePastConsumed(pos, new Set(['000000010000000000000006'])), false, 'nothing consumed: no move');
  // A consumed name behind the position (a late rename) is forgotten without moving back.
  pos.seen.add('000000010000000000000002');
  assert.is(advancePastConsumed(pos, new Set(['000000010000000000000006'])), false);
  assert.is(pos.segno, 5);
  assert.equal([...pos.seen], ['000000010000000000000006']);
});

test.run();
