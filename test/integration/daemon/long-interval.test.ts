/**
 * Issue 9 item 5: a reconcile interval beyond Node's 2^31 ms timer limit (4w) must not turn into a
 * 1 ms loop. The daemon writes its metrics file after every pass (an atomic rename: a new inode
 * each time), so counting inodes over 2 s counts passes. No PostgreSQL needed: a server without
 * `connection` still gets full passes. Also: a too-large option is refused naming the option.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runPgbk } from '../../support/pgbk.js';
import { startDaemon, type DaemonProcess } from './daemon-process.js';

let dir: string;
let config: string;
let daemon: DaemonProcess | undefined;

test.before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-long-interval-'));
  config = path.join(dir, 'pgbk.yaml');
  writeFileSync(config, `catalog: ${path.join(dir, 'catalog')}\nservers:\n  main:\n    retention: { redundancy: 1 }\n`);
});

test.after(async () => {
  if (daemon !== undefined && daemon.child.exitCode === null) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

function inode(file: string): number | undefined {
  try {
    return statSync(file).ino;
  } catch {
    return undefined;
  }
}

test('daemon --reconcile-interval 4w does not spin: one pass at start, none in the next 2 s', async () => {
  const metrics = path.join(dir, 'pgbk.prom');
  daemon = startDaemon(config, ['--reconcile-interval', '4w', '--metrics-file', metrics]);
  await daemon.waitForLog(/daemon started/);
  const deadline = Date.now() + 30_000;
  while (inode(metrics) === undefined) {
    assert.ok(Date.now() < deadline, `no metrics file after the start pass:\n${daemon.log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 300)); // the start pass's file is written; settle
  const seen = new Set<number>();
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    const ino = inode(metrics);
    if (ino !== undefined) seen.add(ino);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.is(seen.size, 1, `the metrics file was rewritten ${seen.size - 1} times in 2 s: passes are running back to back`);
  assert.not.match(daemon.log(), /TimeoutOverflowWarning/);
  daemon.child.kill('SIGTERM');
  const exit = await daemon.exited;
  assert.is(exit.code, 0, daemon.log());
});

test('a duration option beyond 100 years is refused, naming the option (exit 2, nothing started)', async () => {
  for (const [flag, value] of [
    ['--reconcile-interval', '99999w'],
    ['--shutdown-timeout', '40000d'],
  ] as const) {
    const r = await runPgbk(['--config', config, 'daemon', flag, value]);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, `${flag} ${value}: duration "${value}" is too large: at most 36500d (100 years)`);
    assert.not.match(r.stderr, /daemon started/);
  }
});

test.run();
