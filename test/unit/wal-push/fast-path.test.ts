/**
 * The archive_command's shell fast path, run by the real /bin/sh and GNU stat as PostgreSQL would
 * run it (%p, %f and %% expanded, in the data directory): it exits 0 only for a marker that names
 * this very file; anything else — no marker, a garbled or forged one, a file changed since, no
 * worker — runs the real client.
 */
import { execFile } from 'node:child_process';
import { stat as statCb } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dropMarkers, fastPathArchiveCommand, fileStamp, writeMarker } from '../../../src/wal-push/fast-path.js';

const pexec = promisify(execFile);
const NAME = '000000010000000000000007';

/** PostgreSQL's expansion of archive_command: %p, %f, %% (left to right). */
function expand(cmd: string, p: string, f: string): string {
  return cmd.replace(/%([pf%])/g, (_m, c: string) => (c === 'p' ? p : c === 'f' ? f : '%'));
}

interface World {
  readonly root: string;
  readonly pgdata: string;
  readonly markers: string;
  readonly socket: string;
  readonly server: net.Server;
}

async function world(dirName = 'run'): Promise<World> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pgbk-fastpath-'));
  const pgdata = path.join(root, 'data');
  await mkdir(path.join(pgdata, 'pg_wal'), { recursive: true });
  await writeFile(path.join(pgdata, 'pg_wal', NAME), Buffer.alloc(64 * 1024, 1));
  const markers = path.join(root, dirName, 'acked');
  await mkdir(markers, { recursive: true });
  const socket = path.join(root, dirName, 'w.sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(socket, r));
  return { root, pgdata, markers, socket, server };
}

async function done(w: World): Promise<void> {
  await new Promise((r) => w.server.close(r));
  await rm(w.root, { recursive: true, force: true });
}

async function runCommand(w: World, waitSeconds: number): Promise<{ code: number; out: string; ms: number }> {
  const cmd = fastPathArchiveCommand({
    socket: w.socket,
    markers: w.markers,
    waitSeconds,
    fallback: ['sh', '-c', 'echo "fallback for $1"; exit 7', 'fallback'],
  });
  const t0 = Date.now();
  try {
    const r = await pexec('sh', ['-c', expand(cmd, `pg_wal/${NAME}`, NAME)], { cwd: w.pgdata });
    return { code: 0, out: r.stdout, ms: Date.now() - t0 };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout, ms: Date.now() - t0 };
  }
}

async function stampOf(file: string): Promise<string> {
  return fileStamp(await new Promise((resolve, reject) => statCb(file, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st)))));
}

test('the stamp is what GNU stat prints for the file', async () => {
  const w = await world();
  const file = path.join(w.pgdata, 'pg_wal', NAME);
  const { stdout } = await pexec('stat', ['-c', '%d:%i:%s:%.9Y', '--', file]);
  assert.is(await stampOf(file), stdout.trim());
  await done(w);
});

test('a marker naming this very file answers PostgreSQL without the client', async () => {
  const w = await world();
  await writeMarker(w.markers, NAME, await stampOf(path.join(w.pgdata, 'pg_wal', NAME)));
  const r = await runCommand(w, 2);
  assert.is(r.code, 0);
  assert.is(r.out, '');
  await done(w);
});

test('no marker: the real client runs after the wait', async () => {
  const w = await world();
  const r = await runCommand(w, 0.2);
  assert.is(r.code, 7);
  assert.is(r.out, `fallback for pg_wal/${NAME}\n`);
  assert.ok(r.ms >= 150, `waited only ${r.ms} ms`);
  await done(w);
});

test('a marker written while the command waits is taken', async () => {
  const w = await world();
  const stamp = await stampOf(path.join(w.pgdata, 'pg_wal', NAME));
  setTimeout(() => void writeMarker(w.markers, NAME, stamp), 200);
  const r = await runCommand(w, 5);
  assert.is(r.code, 0, r.out);
  assert.ok(r.ms < 4000);
  await done(w);
});

test('garbled, empty, forged or stale markers fall back to the real client', async () => {
  const w = await world();
  const file = path.join(w.pgdata, 'pg_wal', NAME);
  const good = await stampOf(file);
  const other = path.join(w.pgdata, 'other');
  await writeFile(other, Buffer.alloc(64 * 1024, 1));
  const forgedForOther = await stampOf(other);
  for (const bad of ['', 'garbage', good.slice(0, -3), `${good} extra`, forgedForOther]) {
    await writeFile(path.join(w.markers, NAME), bad === '' ? '' : `${bad}\n`);
    const r = await runCommand(w, 0.1);
    assert.is(r.code, 7, `marker "${bad}" was trusted`);
  }
  // A marker without its newline is a torn write: not trusted.
  await writeFile(path.join(w.markers, NAME), good);
  assert.is((await runCommand(w, 0.1)).code, 7);
  // The right marker, then the file changes (recycled segment, rewritten content): not trusted.
  await writeMarker(w.markers, NAME, good);
  assert.is((await runCommand(w, 0.1)).code, 0);
  await new Promise((r) => setTimeout(r, 30));
  await writeFile(file, Buffer.alloc(64 * 1024, 2));
  assert.is.not(await stampOf(file), good);
  assert.is((await runCommand(w, 0.1)).code, 7);
  await done(w);
});

test('no worker socket: the real client runs at once, marker or not', async () => {
  const w = await world();
  await writeMarker(w.markers, NAME, await stampOf(path.join(w.pgdata, 'pg_wal', NAME)));
  await new Promise((r) => w.server.close(r));
  const r = await runCommand(w, 5);
  assert.is(r.code, 7);
  assert.ok(r.ms < 2000, `waited ${r.ms} ms with no worker`);
  await rm(w.root, { recursive: true, force: true });
});

test('paths with spaces, quotes and % survive sh quoting and PostgreSQL expansion', async () => {
  const w = await world("it's 100% here");
  await writeMarker(w.markers, NAME, await stampOf(path.join(w.pgdata, 'pg_wal', NAME)));
  assert.is((await runCommand(w, 1)).code, 0);
  await done(w);
});

test('dropMarkers keeps markers of files still .ready and removes the rest', async () => {
  const w = await world();
  for (const n of ['A', 'B', 'C']) await writeMarker(w.markers, n, 'x');
  await writeFile(path.join(w.markers, '.D.1.tmp'), 'x');
  await dropMarkers(w.markers, await readdir(w.markers), new Set(['B']));
  assert.equal((await readdir(w.markers)).sort(), ['.D.1.tmp', 'B']);
  assert.ok((await stat(path.join(w.markers, 'B'))).isFile());
  await done(w);
});

test.run();
