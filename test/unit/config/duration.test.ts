import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDuration, parseDuration } from '../../../src/config/duration.js';
import { PgbkError } from '../../../src/errors.js';

const parsed: readonly (readonly [string, number])[] = [
  ['0s', 0],
  ['30s', 30],
  ['5m', 300],
  ['12h', 43200],
  ['14d', 1209600],
  ['2w', 1209600],
  ['90s', 90],
  ['007m', 420],
  ['4w', 2419200],
  ['36500d', 36500 * 86400],
];

for (const [input, seconds] of parsed) {
  test(`parseDuration("${input}") = ${seconds}`, () => {
    assert.is(parseDuration(input), seconds);
  });
}

for (const bad of ['14 days', '14D', '1.5h', '-5m', 'm', '5', '', ' 5m', '5m ', '1y', '3mo', '99999999999999999999w', '36501d', '5215w', '876001h']) {
  test(`parseDuration rejects ${JSON.stringify(bad)}`, () => {
    try {
      parseDuration(bad);
      assert.unreachable('should have thrown');
    } catch (err) {
      assert.instance(err, PgbkError);
      assert.is((err as PgbkError).code, 'CONFIG');
      assert.ok((err as PgbkError).message.includes(JSON.stringify(bad)), (err as PgbkError).message);
    }
  });
}

const formatted: readonly (readonly [number, string])[] = [
  [0, '0s'],
  [1, '1s'],
  [59, '59s'],
  [60, '1m'],
  [90, '90s'],
  [300, '5m'],
  [3600, '1h'],
  [5400, '90m'],
  [86400, '1d'],
  [1209600, '14d'], // days are the largest unit produced: "14d" as users write retention
  [604800, '7d'],
  [86400 + 3600, '25h'],
];

for (const [seconds, text] of formatted) {
  test(`formatDuration(${seconds}) = "${text}"`, () => {
    assert.is(formatDuration(seconds), text);
  });
}

test('formatDuration and parseDuration round-trip', () => {
  for (const s of [1, 61, 3599, 3600, 7200, 86399, 86400, 172800, 1209600, 31536000]) {
    assert.is(parseDuration(formatDuration(s)), s);
  }
});

test('formatDuration rejects negative and fractional seconds', () => {
  assert.throws(() => formatDuration(-1));
  assert.throws(() => formatDuration(1.5));
  assert.throws(() => formatDuration(Number.NaN));
});

test.run();
