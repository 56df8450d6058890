import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { durationFlag } from '../../../src/cli/apply.js';
import { PgbkError } from '../../../src/errors.js';

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.is((err as PgbkError).code, 'USAGE');
    return (err as PgbkError).message;
  }
  assert.unreachable('should have thrown');
  return '';
}

test('durationFlag: milliseconds; 4w is accepted (the timers chain it)', () => {
  assert.is(durationFlag('--shutdown-timeout', '60s'), 60_000);
  assert.is(durationFlag('--reconcile-interval', '4w', 1), 28 * 86400 * 1000);
});

test('durationFlag: a too-large value names the option and the bound', () => {
  assert.is(
    usageError(() => durationFlag('--reconcile-interval', '99999999999w', 1)),
    '--reconcile-interval 99999999999w: duration "99999999999w" is too large: at most 36500d (100 years)',
  );
  assert.match(
    usageError(() => durationFlag('--shutdown-timeout', '36501d')),
    /^--shutdown-timeout 36501d: .*too large/,
  );
});

test('durationFlag: malformed and below-minimum values name the option', () => {
  assert.is(
    usageError(() => durationFlag('--lock-timeout', '5 min')),
    '--lock-timeout 5 min: expected a duration such as 30s, 5m, 1h',
  );
  // 0s would make the reconcile loop spin like a clamped timer does.
  assert.is(
    usageError(() => durationFlag('--reconcile-interval', '0s', 1)),
    '--reconcile-interval 0s: must be at least 1s',
  );
  assert.is(durationFlag('--shutdown-timeout', '0s'), 0);
});

test.run();
