import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cron } from 'croner';
import { createTask, validate as nodeCronValidate } from 'node-cron';
import { nextFireTime, previousFireTime, validateCron, validateTimezone } from '../../../src/config/cron.js';

// ---- which expressions are accepted ---------------------------------------------------------

/** Accepted by pgbk, hence by both libraries. */
const accepted: readonly string[] = [
  '0 3 * * *',
  '30 2 * * *',
  '*/15 * * * *',
  '0 */6 * * *',
  '0 0 * * 0',
  '0 0 * * 7',
  '0 0 * * 1-5',
  '0 0 * * MON-FRI',
  '0 0 * * sun',
  '0 0 1 * *',
  '0 0 1 JAN *',
  '0 0 L * *',
  '0 0 * * 5L',
  '0 0 * * 1#2',
  '0 0 1 * ?',
  '0 0 ? * 1',
  '0 0 29 2 *',
  '1-5/2 * * * *',
  '0 0 * * 1,3,5',
  '0 30 2 * * *',
  '@daily',
  '@hourly',
  '@weekly',
];

/** Refused by pgbk, with a word of the reason. */
const refused: readonly (readonly [expr: string, reason: string])[] = [
  ['61 * * * *', 'minute'],
  ['0 24 * * *', 'hour'],
  ['0 0 32 * *', 'day'],
  ['0 0 * 13 *', 'month'],
  ['0 0 * * 8', 'dayOfWeek'],
  ['* * * *', 'five, six, or seven'],
  ['', 'five, six, or seven'],
  ['abc', 'five, six, or seven'],
  ['*/0 * * * *', 'stepping'],
  ['5-1 * * * *', 'larger'], // node-cron accepts it, croner does not
  ['* * * * * * *', '7'], // croner accepts 7 fields (year), node-cron does not
  ['0 0 30 2 *', 'impossible'], // croner accepts a date that never exists, node-cron does not
  ['0 0 31 4 *', 'impossible'],
  ['0 3 * * *\n', 'illegal characters'], // croner accepts the trailing newline, node-cron does not
  ['0\t3 * * *', 'illegal characters'],
  ['0 0 1 * 1', 'both day-of-month and day-of-week'], // croner: 1st OR Monday; node-cron: 1st AND Monday
  ['0 0 1-7 * MON', 'both day-of-month and day-of-week'],
  ['0 0 0 30 2 *', 'impossible'],
];

function croneAccepts(expr: string): boolean {
  try {
    new Cron(expr, { timezone: 'UTC', paused: true });
    return true;
  } catch {
    return false;
  }
}

for (const expr of accepted) {
  test(`cron accepted: ${JSON.stringify(expr)} (both libraries accept it)`, () => {
    assert.is(validateCron(expr, 'UTC'), undefined);
    assert.is(validateCron(expr, 'America/New_York'), undefined);
    assert.ok(croneAccepts(expr), 'croner');
    assert.ok(nodeCronValidate(expr), 'node-cron');
  });
}

for (const [expr, reason] of refused) {
  test(`cron refused: ${JSON.stringify(expr)} (${reason})`, () => {
    const err = validateCron(expr, 'UTC');
    assert.type(err, 'string');
    assert.ok(err?.includes(reason), err);
    assert.ok(err?.includes(`"${expr}"`), err);
  });
}

test('every expression both libraries accept, pgbk accepts unless dom and dow are both restricted', () => {
  for (const [expr] of refused) {
    const both = croneAccepts(expr) && nodeCronValidate(expr);
    if (both) assert.ok(validateCron(expr, 'UTC')?.includes('both day-of-month and day-of-week'), expr);
  }
});

// ---- the two libraries read accepted expressions the same way --------------------------------

interface Window {
  readonly expr: string;
  readonly tz: string;
  readonly from: string;
  readonly to: string;
  readonly stepMs: number;
}

const MIN = 60_000;
const DAY = 86_400_000;
const windows: readonly Window[] = [
  { expr: '0 3 * * *', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2026-01-04T00:00:00Z', stepMs: MIN },
  { expr: '*/15 * * * *', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', stepMs: MIN },
  { expr: '1-5/2 * * * *', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2026-01-01T06:00:00Z', stepMs: MIN },
  { expr: '0 3 * * *', tz: 'America/New_York', from: '2026-06-01T00:00:00Z', to: '2026-06-04T00:00:00Z', stepMs: MIN },
  { expr: '0 30 2 * * *', tz: 'UTC', from: '2026-01-01T02:00:00Z', to: '2026-01-01T03:00:00Z', stepMs: 1000 },
  // Day-level features: checked at midnight every day for two years.
  { expr: '0 0 L * *', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2028-01-01T00:00:00Z', stepMs: DAY },
  { expr: '0 0 * * 5L', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2028-01-01T00:00:00Z', stepMs: DAY },
  { expr: '0 0 * * 1#2', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2028-01-01T00:00:00Z', stepMs: DAY },
  { expr: '0 0 * * 7', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z', stepMs: DAY },
  { expr: '0 0 * * MON-FRI', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z', stepMs: DAY },
  { expr: '0 0 29 2 *', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z', stepMs: DAY },
  { expr: '0 0 1 JAN *', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2028-01-01T00:00:00Z', stepMs: DAY },
  { expr: '0 0 ? * 1', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z', stepMs: DAY },
  { expr: '@weekly', tz: 'UTC', from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z', stepMs: DAY },
];

for (const w of windows) {
  test(`croner and node-cron fire at the same times: "${w.expr}" in ${w.tz}`, () => {
    const from = Date.parse(w.from);
    const to = Date.parse(w.to);
    const croner = new Cron(w.expr, { timezone: w.tz, paused: true });
    const cronerRuns = new Set<number>();
    for (let run = croner.nextRun(new Date(from - 1)); run !== null && run.getTime() < to; run = croner.nextRun(run)) {
      cronerRuns.add(run.getTime());
    }
    assert.ok(cronerRuns.size > 0, 'the window contains runs');
    const task = createTask(w.expr, () => undefined, { timezone: w.tz });
    try {
      let matched = 0;
      for (let t = from; t < to; t += w.stepMs) {
        const nodeMatches = task.match(new Date(t));
        assert.is(nodeMatches, cronerRuns.has(t), `${new Date(t).toISOString()}: node-cron ${nodeMatches}`);
        if (nodeMatches) matched++;
      }
      // Every croner run lies on the step grid, so the counts must agree too.
      assert.is(matched, cronerRuns.size);
    } finally {
      task.destroy();
    }
  });
}

// ---- time zones -----------------------------------------------------------------------------

test('time zones: IANA names are accepted, others refused with the name in the message', () => {
  for (const tz of ['UTC', 'Etc/UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata']) {
    assert.is(validateTimezone(tz), undefined, tz);
  }
  for (const tz of ['Mars/Olympus', 'Europe/Berlinn', '+02:00', 'GMT+2', '']) {
    assert.ok(validateTimezone(tz)?.includes(`"${tz}"`), tz);
    assert.ok(validateCron('0 3 * * *', tz)?.includes(`"${tz}"`), tz);
  }
});

test('a schedule in UTC (every schedule without a zone) is checked without building an Intl.DateTimeFormat (~15 ms of ICU set-up)', () => {
  const real = Intl.DateTimeFormat;
  let built = 0;
  const counting = function (this: unknown, ...args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
    built++;
    return new real(...args);
  } as unknown as typeof Intl.DateTimeFormat;
  Intl.DateTimeFormat = counting;
  try {
    assert.is(validateTimezone('UTC'), undefined);
    assert.is(validateCron('0 3 * * *', 'UTC'), undefined);
    assert.is(validateCron('*/5 * * * *', 'Etc/UTC'), undefined);
    assert.is(built, 0, 'Intl.DateTimeFormat was built for UTC');
    assert.is(validateTimezone('Europe/Berlin'), undefined);
    assert.ok(built > 0, 'other zones are still asked of Intl');
  } finally {
    Intl.DateTimeFormat = real;
  }
});

// ---- previousFireTime -----------------------------------------------------------------------

interface FireCase {
  readonly name: string;
  readonly expr: string;
  readonly tz: string;
  readonly now: string;
  readonly expected: string | undefined;
}

const fireCases: readonly FireCase[] = [
  { name: "after today's run", expr: '0 3 * * *', tz: 'UTC', now: '2026-11-24T03:17:00Z', expected: '2026-11-24T03:00:00.000Z' },
  { name: 'exactly at the run', expr: '0 3 * * *', tz: 'UTC', now: '2026-11-24T03:00:00.000Z', expected: '2026-11-24T03:00:00.000Z' },
  { name: '1 ms before the run', expr: '0 3 * * *', tz: 'UTC', now: '2026-11-24T02:59:59.999Z', expected: '2026-11-23T03:00:00.000Z' },
  { name: 'half a second after the run', expr: '0 3 * * *', tz: 'UTC', now: '2026-11-24T03:00:00.500Z', expected: '2026-11-24T03:00:00.000Z' },
  { name: 'every second, mid-second', expr: '* * * * * *', tz: 'UTC', now: '2026-11-24T03:00:07.250Z', expected: '2026-11-24T03:00:07.000Z' },
  // Missed runs: after a week of downtime the last fire time is the newest one, not the first missed.
  { name: 'a week of missed runs', expr: '0 3 * * *', tz: 'UTC', now: '2026-12-01T12:00:00Z', expected: '2026-12-01T03:00:00.000Z' },
  { name: 'weekly, missed twice', expr: '0 3 * * 0', tz: 'UTC', now: '2026-11-24T12:00:00Z', expected: '2026-11-22T03:00:00.000Z' },
  { name: 'leap day, years back', expr: '0 0 29 2 *', tz: 'UTC', now: '2026-11-24T12:00:00Z', expected: '2024-02-29T00:00:00.000Z' },
  // Europe/Berlin, spring forward 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist that
  // day; the run happens once, when the gap ends (03:00 CEST = 01:00Z).
  { name: 'Berlin DST gap, before the run', expr: '30 2 * * *', tz: 'Europe/Berlin', now: '2026-03-29T00:59:59Z', expected: '2026-03-28T01:30:00.000Z' },
  { name: 'Berlin DST gap, at gap end', expr: '30 2 * * *', tz: 'Europe/Berlin', now: '2026-03-29T01:00:00Z', expected: '2026-03-29T01:00:00.000Z' },
  { name: 'Berlin DST gap, later that day', expr: '30 2 * * *', tz: 'Europe/Berlin', now: '2026-03-29T12:00:00Z', expected: '2026-03-29T01:00:00.000Z' },
  { name: 'Berlin day after the gap (CEST)', expr: '30 2 * * *', tz: 'Europe/Berlin', now: '2026-03-30T12:00:00Z', expected: '2026-03-30T00:30:00.000Z' },
  // Fall back 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice; the run is the first (CEST).
  { name: 'Berlin DST repeat, first 02:30', expr: '30 2 * * *', tz: 'Europe/Berlin', now: '2026-10-25T00:30:00Z', expected: '2026-10-25T00:30:00.000Z' },
  {
    name: 'Berlin DST repeat, second 02:30 is no new run',
    expr: '30 2 * * *',
    tz: 'Europe/Berlin',
    now: '2026-10-25T01:45:00Z',
    expected: '2026-10-25T00:30:00.000Z',
  },
  { name: 'Berlin day after the repeat (CET)', expr: '30 2 * * *', tz: 'Europe/Berlin', now: '2026-10-26T12:00:00Z', expected: '2026-10-26T01:30:00.000Z' },
  {
    name: 'Berlin week of missed runs across the gap',
    expr: '30 2 * * *',
    tz: 'Europe/Berlin',
    now: '2026-04-02T00:00:00Z',
    expected: '2026-04-01T00:30:00.000Z',
  },
];

for (const c of fireCases) {
  test(`previousFireTime: ${c.name}`, () => {
    assert.is(previousFireTime(c.expr, c.tz, new Date(c.now))?.toISOString(), c.expected);
  });
}

test('UTC schedules: the same runs as Etc/UTC', () => {
  const instants = ['2026-03-29T00:59:59Z', '2026-03-29T01:00:00Z', '2026-10-25T00:30:00Z', '2026-12-31T23:59:59.500Z', '2028-02-29T03:00:00Z'].map(
    (t) => new Date(t),
  );
  const runs = (tz: string) =>
    accepted.map((expr) => instants.map((now) => [previousFireTime(expr, tz, now)?.toISOString(), nextFireTime(expr, tz, now)?.toISOString()]));
  assert.equal(runs('UTC'), runs('Etc/UTC'));
});

test('UTC schedules are computed without an Intl.DateTimeFormat (its first use costs ~20 ms of status)', () => {
  // A fresh process: croner keeps the formatters it built, so this one must not have used any yet.
  const cron = new URL('../../../src/config/cron.js', import.meta.url).href;
  const script = `
    const real = Intl.DateTimeFormat; let built = 0;
    Intl.DateTimeFormat = function (...a) { built++; return new real(...a); };
    const { nextFireTime, previousFireTime } = await import(${JSON.stringify(cron)});
    const now = new Date('2026-12-03T10:00:00Z');
    const runs = [previousFireTime('0 3 * * *', 'UTC', now), nextFireTime('0 3 * * *', 'UTC', now)].map((d) => d.toISOString());
    process.stdout.write(JSON.stringify({ built, runs }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as unknown;
  assert.equal(out, { built: 0, runs: ['2026-12-03T03:00:00.000Z', '2026-12-04T03:00:00.000Z'] });
});

test('previousFireTime is undefined before the first run ever', () => {
  // croner's 7th field is the year (validateCron refuses it; it is the only way to bound a schedule).
  assert.is(previousFireTime('0 0 0 1 1 * 2030', 'UTC', new Date('2026-01-01T00:00:00Z')), undefined);
  assert.is(previousFireTime('0 0 0 1 1 * 2030', 'UTC', new Date('2031-01-01T00:00:00Z'))?.toISOString(), '2030-01-01T00:00:00.000Z');
});

test('previousFireTime does not mutate now and is deterministic', () => {
  const now = new Date('2026-11-24T03:17:00Z');
  const a = previousFireTime('0 3 * * *', 'UTC', now);
  const b = previousFireTime('0 3 * * *', 'UTC', now);
  assert.is(now.toISOString(), '2026-11-24T03:17:00.000Z');
  assert.equal(a, b);
});

test('previousFireTime throws a CONFIG error for an expression croner cannot parse', () => {
  assert.throws(() => previousFireTime('61 * * * *', 'UTC', new Date('2026-01-01T00:00:00Z')), /invalid cron/);
});

test.run();
