import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ServerRunner } from '../../../src/daemon/server-runner.js';
import { createLogger } from '../../../src/lib/logger.js';
import { Writable } from 'node:stream';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a burst of wake-ups coalesces; wake-ups during a pass cause exactly one more pass', async () => {
  let passes = 0;
  let running = 0;
  let maxConcurrent = 0;
  const runner = new ServerRunner({
    debounceMs: 20,
    retryMs: 1000,
    onError: () => undefined,
    pass: async () => {
      running++;
      maxConcurrent = Math.max(maxConcurrent, running);
      passes++;
      await sleep(50);
      running--;
    },
  });
  for (let i = 0; i < 10; i++) runner.wake();
  await sleep(40); // first pass running
  for (let i = 0; i < 10; i++) runner.wake();
  await sleep(200);
  assert.is(passes, 2);
  assert.is(maxConcurrent, 1);
  await runner.stop();
});

test('stop() waits for the pass in progress and prevents new ones', async () => {
  let finished = false;
  let passes = 0;
  const runner = new ServerRunner({
    debounceMs: 0,
    retryMs: 1000,
    onError: () => undefined,
    pass: async () => {
      passes++;
      await sleep(80);
      finished = true;
    },
  });
  runner.wake();
  await sleep(20);
  assert.ok(runner.busy);
  runner.wake();
  await runner.stop();
  assert.ok(finished);
  runner.wake();
  await sleep(50);
  assert.is(passes, 1);
});

test('a failing pass is reported and retried', async () => {
  const errors: unknown[] = [];
  let passes = 0;
  const runner = new ServerRunner({
    debounceMs: 0,
    retryMs: 30,
    onError: (e) => errors.push(e),
    pass: async () => {
      passes++;
      if (passes === 1) throw new Error('lock held');
    },
  });
  runner.wake();
  await sleep(120);
  assert.is(errors.length, 1);
  assert.is(passes, 2);
  await runner.stop();
});

test('json logger writes one object per line; text logger one readable line', () => {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  });
  const clock = (): Date => new Date('2026-01-02T03:04:05Z');
  createLogger('json', sink, clock).log('warn', 'rpo exceeded', { server: 'main', lag: 3 });
  createLogger('text', sink, clock).log('info', 'archived', { server: 'main', detail: 'a b' });
  const [json, text] = out.trimEnd().split('\n');
  assert.equal(JSON.parse(json!), { time: '2026-01-02T03:04:05.000Z', level: 'warn', msg: 'rpo exceeded', server: 'main', lag: 3 });
  assert.is(text, '2026-01-02T03:04:05.000Z INFO  archived server=main detail="a b"');
});

test.run();
