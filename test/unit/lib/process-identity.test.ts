import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPidFile, isSameProcessAlive, parsePidFile, processIdentity, startTicksFromStat } from '../../../src/lib/process-identity.js';

test('startTicksFromStat counts fields after the command name, which may hold spaces and parens', () => {
  const rest = 'S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 19 20';
  assert.is(startTicksFromStat(`123 (node) ${rest}`), '424242');
  assert.is(startTicksFromStat(`123 (a) b (c) ${rest}`), '424242');
  assert.is(startTicksFromStat('garbage'), undefined);
  assert.is(startTicksFromStat('1 (x) S 1'), undefined);
  // This process: the field read is the kernel's starttime of /proc/self/stat.
  const own = readFileSync('/proc/self/stat', 'utf8');
  assert.match(startTicksFromStat(own) ?? '', /^\d+$/);
});

test('processIdentity records boot id and start ticks; this process is alive as itself', () => {
  const me = processIdentity();
  assert.is(me.pid, process.pid);
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  assert.ok(me.processStart?.startsWith(`${bootId}:`), me.processStart);
  assert.ok(isSameProcessAlive(me));
});

test('a live pid with another start time (a reused pid) is not the recorded process', () => {
  const me = processIdentity();
  const [boot, ticks] = (me.processStart ?? '').split(':');
  assert.not.ok(isSameProcessAlive({ pid: process.pid, processStart: `${boot}:${Number(ticks) + 1}` }));
  assert.not.ok(isSameProcessAlive({ pid: process.pid, processStart: `00000000-0000-0000-0000-000000000000:${ticks}` }), 'another boot');
});

test('a record without a start falls back to kill(pid, 0)', () => {
  assert.ok(isSameProcessAlive({ pid: process.pid }));
  assert.ok(isSameProcessAlive({ pid: 1 }), 'pid 1 exists');
  assert.not.ok(isSameProcessAlive({ pid: 0 }));
  assert.not.ok(isSameProcessAlive({ pid: -5 }));
  assert.not.ok(isSameProcessAlive({ pid: 1.5 }));
});

test('a spawned process is alive as recorded, dead once it exited', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid ?? 0;
  const id = processIdentity(pid);
  assert.ok(id.processStart !== undefined);
  assert.ok(isSameProcessAlive(id));
  assert.not.ok(isSameProcessAlive({ pid, processStart: processIdentity().processStart ?? 'x' }), 'our start, its pid');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  assert.not.ok(isSameProcessAlive(id));
});

test('pid files: two lines, and a plain old one-line pid file still parses', () => {
  assert.equal(parsePidFile(formatPidFile({ pid: 42, processStart: 'b:7' })), { pid: 42, processStart: 'b:7' });
  assert.equal(parsePidFile(formatPidFile({ pid: 42 })), { pid: 42 });
  assert.equal(parsePidFile('42'), { pid: 42 });
  assert.equal(parsePidFile(' 42 \n'), { pid: 42 });
  assert.is(parsePidFile(''), undefined);
  assert.is(parsePidFile('x\nb:7'), undefined);
});

test.run();
