import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { allInOrder } from '../../../src/lib/all-in-order.js';

test('allInOrder: the values in order, typed per position', async () => {
  const [a, b, c] = await allInOrder([Promise.resolve(1), sleep(5).then(() => 'two'), 3]);
  assert.is(a + c, 4);
  assert.is(b.toUpperCase(), 'TWO');
});

test('allInOrder: the first rejection in argument order, not in time, once all have settled', async () => {
  let lateSettled = false;
  const first = sleep(20).then(() => {
    throw new Error('cannot read server.json');
  });
  const second = Promise.reject(new Error('cannot list backups'));
  const late = sleep(30).then(() => {
    lateSettled = true;
  });
  try {
    await allInOrder([first, second, late]);
    assert.unreachable('should throw');
  } catch (err) {
    assert.is((err as Error).message, 'cannot read server.json');
    assert.ok(lateSettled, 'nothing is left running behind the error');
  }
});

test.run();
