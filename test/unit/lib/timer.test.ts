import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_TIMER_MS, setLongInterval, setLongTimeout, settleWithin, sleep, type Scheduler } from '../../../src/lib/timer.js';

/** A fake clock: timers fire only when the test advances time, in due order. */
function fakeScheduler(): Scheduler & { readonly delays: number[]; advance(ms: number): void; time(): number; pending(): number } {
  let t = 0;
  let nextId = 1;
  const timers = new Map<number, { due: number; fn: () => void }>();
  const delays: number[] = [];
  return {
    delays,
    now: () => t,
    setTimeout(fn, ms) {
      // What Node does with an out-of-range delay: the bug these timers exist to avoid.
      const effective = ms >= 2 ** 31 || ms < 1 ? 1 : ms;
      delays.push(ms);
      const id = nextId++;
      timers.set(id, { due: t + effective, fn });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(ms) {
      const end = t + ms;
      for (;;) {
        let first: [number, { due: number; fn: () => void }] | undefined;
        for (const e of timers) if (e[1].due <= end && (first === undefined || e[1].due < first[1].due)) first = e;
        if (first === undefined) break;
        timers.delete(first[0]);
        t = first[1].due;
        first[1].fn();
      }
      t = end;
    },
    time: () => t,
    pending: () => timers.size,
  };
}

const FOUR_WEEKS = 28 * 86400 * 1000;

test('setLongTimeout: 4 weeks (> 2^31 ms) is chained in chunks of at most 2^31-1 ms and fires exactly on time', () => {
  const s = fakeScheduler();
  let firedAt: number | undefined;
  setLongTimeout(() => (firedAt = s.time()), FOUR_WEEKS, { scheduler: s });
  s.advance(1000);
  assert.is(firedAt, undefined, 'fired early (clamped to 1 ms)');
  s.advance(MAX_TIMER_MS);
  assert.is(firedAt, undefined, 'fired after the first chunk');
  s.advance(FOUR_WEEKS);
  assert.is(firedAt, FOUR_WEEKS);
  assert.ok(
    s.delays.every((d) => d >= 1 && d <= MAX_TIMER_MS),
    String(s.delays),
  );
  assert.equal(s.delays, [MAX_TIMER_MS, FOUR_WEEKS - MAX_TIMER_MS]);
});

test('setLongTimeout: a short delay is one ordinary timer; clear() cancels a chained one', () => {
  const s = fakeScheduler();
  let fired = 0;
  setLongTimeout(() => fired++, 500, { scheduler: s });
  s.advance(499);
  assert.is(fired, 0);
  s.advance(1);
  assert.is(fired, 1);
  assert.equal(s.delays, [500]);

  const t = setLongTimeout(() => fired++, 3 * MAX_TIMER_MS, { scheduler: s });
  s.advance(MAX_TIMER_MS + 10); // now in the second chunk
  t.clear();
  assert.is(s.pending(), 0);
  s.advance(3 * MAX_TIMER_MS);
  assert.is(fired, 1);
});

test('setLongInterval: a 4-week period fires once per 4 weeks, not every millisecond', () => {
  const s = fakeScheduler();
  const fires: number[] = [];
  const t = setLongInterval(() => fires.push(s.time()), FOUR_WEEKS, { scheduler: s });
  s.advance(2000);
  assert.equal(fires, []);
  s.advance(3 * FOUR_WEEKS);
  assert.equal(fires, [FOUR_WEEKS, 2 * FOUR_WEEKS, 3 * FOUR_WEEKS]);
  t.clear();
  s.advance(FOUR_WEEKS);
  assert.is(fires.length, 3);
  assert.is(s.pending(), 0);
});

test('setLongInterval: clear() inside the callback stops it', () => {
  const s = fakeScheduler();
  let n = 0;
  const t = setLongInterval(
    () => {
      n++;
      t.clear();
    },
    10,
    { scheduler: s },
  );
  s.advance(100);
  assert.is(n, 1);
});

test('bad delays are refused instead of becoming 1 ms', () => {
  for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
    assert.throws(() => setLongTimeout(() => undefined, bad), /not a finite number/);
  }
  assert.throws(() => setLongInterval(() => undefined, 0), /shorter than 1 ms/);
});

test('sleep: real timers resolve, and abort rejects', async () => {
  const start = Date.now();
  await sleep(30);
  assert.ok(Date.now() - start >= 29);
  const ac = new AbortController();
  const p = sleep(10_000, { signal: ac.signal });
  ac.abort(new Error('stop'));
  try {
    await p;
    assert.unreachable();
  } catch (err) {
    assert.is((err as Error).message, 'stop');
  }
});

test('sleep: 4 weeks on a real scheduler does not resolve within 50 ms', async () => {
  let done = false;
  const ac = new AbortController();
  const p = sleep(FOUR_WEEKS, { signal: ac.signal }).then(
    () => (done = true),
    () => undefined,
  );
  await new Promise((r) => setTimeout(r, 50));
  assert.is(done, false);
  ac.abort();
  await p;
});

const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('settleWithin: the work first → its value, and no timer is left to keep the process alive', async () => {
  const before = timeouts();
  assert.is(await settleWithin(Promise.resolve(7), 60_000), 7);
  assert.is(timeouts(), before);
});

test('settleWithin: the time first → undefined', async () => {
  assert.is(await settleWithin(new Promise<number>(() => undefined), 20), undefined);
});

test.run();
