/** check on an object store: the clock verdict from the store's Date header (pure parts). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clockSkewMs, judgeClockSkew, MAX_CLOCK_SKEW_MS } from '../../../src/check/object-store-checks.js';

const EP = 'http://127.0.0.1:7480';

test('skew is the store minus the midpoint of the request', () => {
  const sent = Date.parse('2026-12-02T10:00:00.000Z');
  assert.is(clockSkewMs('Wed, 02 Dec 2026 10:00:30 GMT', sent, sent + 1000), 29_500);
  assert.is(clockSkewMs('Wed, 02 Dec 2026 09:59:00 GMT', sent, sent), -60_000);
  assert.is(clockSkewMs('not a date', sent, sent), undefined);
});

test('within the limit passes; beyond it fails naming the direction and the endpoint', () => {
  assert.is(judgeClockSkew(EP, 400).ok, true);
  assert.match(judgeClockSkew(EP, 400).detail, `within 1s of the object store's (${EP})`);
  assert.is(judgeClockSkew(EP, -MAX_CLOCK_SKEW_MS).ok, true);
  const behind = judgeClockSkew(EP, 120_000);
  assert.is(behind.ok, false);
  assert.is(behind.detail, `this host's clock is 120s behind the object store's (${EP})`);
  const ahead = judgeClockSkew(EP, -MAX_CLOCK_SKEW_MS - 1000);
  assert.is(ahead.ok, false);
  assert.match(ahead.detail, /61s ahead of the object store's/);
  assert.match(ahead.hint ?? '', /synchronise the clock/);
});

test.run();
