import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import { ensureServerDirs, lockPath, serverDir } from '../../../src/catalog/layout.js';
import { acquireLock, readLock } from '../../../src/catalog/lock.js';
import { processIdentity } from '../../../src/lib/process-identity.js';
import { makeTempDir, rejection } from './tmp-catalog.js';

const tmp = makeTempDir();
const catalog = tmp.dir;
test.before(async () => {
  await ensureServerDirs(catalog, 'main');
});
test.after(() => tmp.cleanup());

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid;
  await new Promise((resolve) => child.on('exit', resolve));
  if (pid === undefined) throw new Error('no pid');
  return pid;
}

function writeLock(info: Record<string, unknown>): void {
  writeFileSync(lockPath(catalog, 'main'), JSON.stringify(info));
}

test('acquire, read, release', async () => {
  const h = await acquireLock(catalog, 'main', { command: 'pgbk apply', timeoutMs: 0 });
  const seen = await readLock(catalog, 'main');
  assert.ok(seen);
  assert.is(seen.id, h.info.id);
  assert.is(seen.pid, process.pid);
  assert.is(seen.host, os.hostname());
  assert.is(seen.command, 'pgbk apply');
  await h.release();
  assert.is(await readLock(catalog, 'main'), undefined);
  await h.release(); // idempotent
});

test('contention times out naming the holder', async () => {
  const h = await acquireLock(catalog, 'main', { command: 'pgbk apply', timeoutMs: 0 });
  const started = Date.now();
  const err = await rejection(acquireLock(catalog, 'main', { command: 'pgbk backup', timeoutMs: 300, pollMs: 50 }));
  assert.ok(Date.now() - started >= 290, 'waited for the timeout');
  assert.instance(err, PgbkError);
  const e = err as PgbkError;
  assert.is(e.code, 'LOCK');
  assert.is(e.server, 'main');
  assert.match(e.message, `server main is locked by pid ${process.pid} on host ${os.hostname()} running "pgbk apply" since ${h.info.since}`);
  await h.release();
});

test('a waiter gets the lock once the holder releases it', async () => {
  const h = await acquireLock(catalog, 'main', { command: 'first', timeoutMs: 0 });
  setTimeout(() => void h.release(), 150);
  const h2 = await acquireLock(catalog, 'main', { command: 'second', timeoutMs: 5000, pollMs: 20 });
  assert.is((await readLock(catalog, 'main'))?.command, 'second');
  await h2.release();
});

test('release does not remove a lock that is no longer ours', async () => {
  const h = await acquireLock(catalog, 'main', { command: 'mine', timeoutMs: 0 });
  writeLock({ id: 'someone-else', pid: process.pid, host: os.hostname(), command: 'other', since: 'now' });
  await h.release();
  assert.is((await readLock(catalog, 'main'))?.id, 'someone-else');
  writeLock({ id: 'x', pid: 1, host: 'elsewhere.invalid', command: 'other', since: 'now' });
});

test('a dead holder on this host is taken over; one on another host is waited for', async () => {
  writeLock({ id: 'dead', pid: await deadPid(), host: os.hostname(), command: 'pgbk apply', since: '2020-01-01T00:00:00Z' });
  const h = await acquireLock(catalog, 'main', { command: 'taker', timeoutMs: 0 });
  assert.is((await readLock(catalog, 'main'))?.id, h.info.id);
  await h.release();

  writeLock({ id: 'remote', pid: await deadPid(), host: 'other-host.invalid', command: 'pgbk daemon', since: 'then' });
  const err = (await rejection(acquireLock(catalog, 'main', { command: 'x', timeoutMs: 50, pollMs: 10 }))) as PgbkError;
  assert.is(err.code, 'LOCK');
  assert.match(err.message, /on host other-host\.invalid running "pgbk daemon"/);
});

test('a holder whose pid now belongs to another process (start time differs) is taken over', async () => {
  const me = processIdentity();
  const [boot, ticks] = (me.processStart ?? '').split(':');
  // pid alive (this very process), but not the process that wrote the lock: a reused pid.
  writeLock({ id: 'reused', pid: process.pid, processStart: `${boot}:${Number(ticks) + 1}`, host: os.hostname(), command: 'pgbk apply', since: 'then' });
  const h = await acquireLock(catalog, 'main', { command: 'taker', timeoutMs: 0 });
  assert.is((await readLock(catalog, 'main'))?.id, h.info.id);
  await h.release();

  // Same pid and same start: the holder really is alive, so it is waited for.
  writeLock({ id: 'live', pid: process.pid, processStart: me.processStart, host: os.hostname(), command: 'pgbk apply', since: 'then' });
  assert.is(((await rejection(acquireLock(catalog, 'main', { command: 'x', timeoutMs: 0 }))) as PgbkError).code, 'LOCK');
  // An old lock without a start: kill(pid, 0) only, so a live pid is waited for too.
  writeLock({ id: 'old', pid: process.pid, host: os.hostname(), command: 'pgbk apply', since: 'then' });
  assert.is(((await rejection(acquireLock(catalog, 'main', { command: 'x', timeoutMs: 0 }))) as PgbkError).code, 'LOCK');
  unlinkSync(lockPath(catalog, 'main'));
});

test('the lock records its holder start and is not world-readable', async () => {
  const h = await acquireLock(catalog, 'main', { command: 'mode', timeoutMs: 0 });
  assert.is(h.info.processStart, processIdentity().processStart);
  assert.is((await readLock(catalog, 'main'))?.processStart, processIdentity().processStart);
  assert.is(statSync(lockPath(catalog, 'main')).mode & 0o777, 0o640);
  await h.release();
});

test('concurrent takers of a dead lock: exactly one wins', async () => {
  writeLock({ id: 'dead2', pid: await deadPid(), host: os.hostname(), command: 'pgbk apply', since: 'then' });
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, (_, i) => acquireLock(catalog, 'main', { command: `taker ${i}`, timeoutMs: 200, pollMs: 10 })),
  );
  const winners = results.filter((r) => r.status === 'fulfilled');
  assert.is(winners.length, 1);
  for (const r of results) {
    if (r.status === 'rejected') assert.is((r.reason as PgbkError).code, 'LOCK');
  }
  const w = winners[0];
  if (w?.status === 'fulfilled') {
    assert.is((await readLock(catalog, 'main'))?.id, w.value.info.id);
    await w.value.release();
  }
  // no takeover markers or temp files left behind
  assert.equal(
    readdirSync(serverDir(catalog, 'main')).filter((n) => n.startsWith('lock') || n.startsWith('.')),
    [],
  );
  assert.not.ok(existsSync(lockPath(catalog, 'main')));
});

test('a taker that died holding the takeover marker does not block forever', async () => {
  const dead = await deadPid();
  writeLock({ id: 'dead3', pid: dead, host: os.hostname(), command: 'pgbk apply', since: 'then' });
  writeFileSync(`${lockPath(catalog, 'main')}.takeover-dead3`, JSON.stringify({ id: 'm1', pid: dead, host: os.hostname() }));
  const h = await acquireLock(catalog, 'main', { command: 'survivor', timeoutMs: 0 });
  assert.is((await readLock(catalog, 'main'))?.id, h.info.id);
  await h.release();
  assert.equal(
    readdirSync(serverDir(catalog, 'main')).filter((n) => n.startsWith('lock')),
    [],
  );
});

test('an unreadable lock file is reported, not stolen', async () => {
  writeFileSync(lockPath(catalog, 'main'), 'garbage');
  const err = (await rejection(acquireLock(catalog, 'main', { command: 'x', timeoutMs: 0 }))) as PgbkError;
  assert.is(err.code, 'LOCK');
  assert.match(err.hint ?? '', /remove/);
});

test.run();
